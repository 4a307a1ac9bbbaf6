"""State changes of card payments: starting them, completion, refunds, disputes.

The webhook handlers, the reconciliation job and admin all end here, so a payment is
settled by the same code whichever learns of it first, exactly once: the payment row
is locked (`lock_payment` and friends), and every effect has a unique key derived
from Stripe's ids. What a payment buys is not known here: its purpose finds the app
that fulfils it in `payments.purposes` (credit packages, Essential, track purchases).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from books import services as books
from books.models import AccountCode, JournalCause
from credits.models import CreditPackage
from payments.gateway import GatewayError, get_gateway
from payments.models import (
    AttemptOutcome,
    Payment,
    PaymentAttempt,
    PaymentFlag,
    PaymentStatus,
    Purpose,
    Refund,
)
from payments.purposes import fulfilment_for
from subscriptions.selectors import has_active_subscription

logger = logging.getLogger(__name__)

RECONCILE_AFTER = dt.timedelta(minutes=10)
# A PaymentIntent left unpaid this long is canceled by reconciliation (DESIGN.md 2).
ABANDONED_AFTER = dt.timedelta(hours=24)
PENDING_REUSE_WINDOW = dt.timedelta(minutes=30)
S = PaymentStatus

# The allowed moves of a payment's status; anything else is a bug or a stale event.
TRANSITIONS: dict[str, set[str]] = {
    S.PENDING: {S.SUCCEEDED, S.FAILED, S.CANCELED},
    S.FAILED: {S.SUCCEEDED, S.CANCELED},
    S.SUCCEEDED: {S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED},
    S.PARTIALLY_REFUNDED: {S.REFUNDED, S.DISPUTED},
    S.DISPUTED: {S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED},
    S.CANCELED: set(),
    S.REFUNDED: set(),
}
# A payment in one of these has been paid: it can be refunded or disputed.
PAID_STATUSES = (S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.DISPUTED, S.REFUNDED)


class SubscriptionRequired(Exception):
    """Credit packages need an active Essential subscription."""


class InvalidTransition(Exception):
    pass


def _now() -> dt.datetime:
    return timezone.now()


def can_move(payment: Payment, new_status: str) -> bool:
    return new_status in TRANSITIONS[payment.status]


def set_status(payment: Payment, new_status: str, *, extra_fields: tuple[str, ...] = ()) -> None:
    """Move a (locked) payment to a new status, or raise InvalidTransition."""
    if not can_move(payment, new_status):
        raise InvalidTransition(f"Payment {payment.pk}: {payment.status} -> {new_status}")
    payment.status = new_status
    if new_status == S.SUCCEEDED and payment.completed_at is None:
        payment.completed_at = _now()
        extra_fields = (*extra_fields, "completed_at")
    payment.save(update_fields=["status", "updated_at", *extra_fields])


def record_attempt(
    payment: Payment, *, outcome: str, key: str, cause_ref: str, code: str = "", message: str = ""
) -> PaymentAttempt:
    """Keep one outcome of a (locked) payment; the same `key` twice is one row."""
    attempt, _ = PaymentAttempt.objects.get_or_create(
        payment=payment,
        key=key[:255],
        defaults={
            "outcome": outcome,
            "code": code[:64],
            "message": message[:500],
            "cause_ref": cause_ref[:200],
            "created_at": _now(),
        },
    )
    return attempt


def _attempt_of_intent(intent: dict, *, cause_ref: str) -> dict:
    """What a failed or canceled PaymentIntent says of its latest try."""
    if intent.get("status") == "canceled":
        reason = intent.get("cancellation_reason") or ""
        return {
            "outcome": AttemptOutcome.CANCELED,
            "key": "canceled",
            "code": reason,
            "message": "The payment was canceled.",
        }
    error = intent.get("last_payment_error") or {}
    charge = error.get("charge")
    if isinstance(charge, dict):
        charge = charge.get("id")
    return {
        # Stripe: a decline has code card_declined and the bank's reason as decline_code.
        "outcome": AttemptOutcome.DECLINED
        if error.get("code") == "card_declined"
        else AttemptOutcome.FAILED,
        "key": f"charge:{charge}" if charge else f"event:{cause_ref}",
        "code": error.get("decline_code") or error.get("code") or "",
        "message": error.get("message") or "The payment failed.",
    }


# --- Locks: a payment row is locked after the user's wallet (credits) and before
# anything a fulfilment locks; no function here holds two payments at once. ---------


def lock_payment(pk: int) -> Payment:
    return Payment.objects.select_for_update().get(pk=pk)


def _locked_payment_for_intent(intent: dict) -> Payment:
    """The locked payment of a PaymentIntent; made from the intent if we have none."""
    intent_id = intent["id"]
    metadata = intent.get("metadata") or {}
    payment = Payment.objects.select_for_update().filter(stripe_payment_intent_id=intent_id).first()
    if payment is None and str(metadata.get("payment_id", "")).isdigit():
        payment = (
            Payment.objects.select_for_update()
            .filter(pk=int(metadata["payment_id"]), user_id=metadata.get("user_id"))
            .first()
        )
        if payment is not None and not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = intent_id
            payment.save(update_fields=["stripe_payment_intent_id", "updated_at"])
    if payment is None:
        # Out of order: Stripe knows a payment we have no row for. Stripe is the truth.
        purpose = metadata.get("purpose")
        fields = fulfilment_for(purpose).payment_fields(metadata)
        try:
            with transaction.atomic():
                Payment.objects.create(
                    user_id=int(metadata["user_id"]),
                    purpose=purpose,
                    amount_cents=intent["amount"],
                    currency=intent.get("currency", "usd"),
                    stripe_payment_intent_id=intent_id,
                    **fields,
                )
        except IntegrityError:
            pass  # created concurrently by another delivery; lock that one below
        payment = Payment.objects.select_for_update().get(stripe_payment_intent_id=intent_id)
    return payment


# --- Starting a payment ---------------------------------------------------------------


def start_card_payment(
    *,
    user,
    purpose: str,
    amount_cents: int,
    description: str,
    metadata: dict,
    idempotency_key: str | None = None,
    **payment_fields,
) -> tuple[Payment, dict]:
    """Record a pending payment and create its PaymentIntent; return both.

    The payment is committed before Stripe is called, so a webhook that outruns our
    response finds it through the payment_id in the metadata. Stripe's idempotency
    key is `idempotency_key` (derived from the caller's own ids) or the payment's id.
    Raises GatewayError (the payment is marked failed) when Stripe cannot be reached
    or refuses.
    """
    payment = Payment.objects.create(
        user=user, purpose=purpose, amount_cents=amount_cents, **payment_fields
    )
    try:
        intent = get_gateway().create_payment_intent(
            amount=amount_cents,
            currency=payment.currency,
            description=description,
            metadata={
                "purpose": purpose,
                "user_id": str(user.pk),
                **metadata,
                "payment_id": str(payment.pk),
            },
            idempotency_key=idempotency_key or f"payment:{payment.pk}:create-intent",
        )
    except GatewayError as exc:
        with transaction.atomic():
            payment = lock_payment(payment.pk)
            payment.failure_message = str(exc)[:500]
            set_status(payment, S.FAILED, extra_fields=("failure_message",))
            record_attempt(
                payment,
                outcome=AttemptOutcome.FAILED,
                key="create-intent",
                cause_ref="gateway",
                code="gateway_error",
                message=payment.failure_message,
            )
        raise
    Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id__isnull=True).update(
        stripe_payment_intent_id=intent["id"], client_secret=intent.get("client_secret") or ""
    )
    payment.refresh_from_db()
    return payment, intent


def start_package_purchase(*, user, package: CreditPackage) -> tuple[Payment, dict]:
    """Start paying for a credit package; return the payment and its PaymentIntent.

    Raises SubscriptionRequired (nothing is created) when the setting requires
    Essential and the user has none, and GatewayError when Stripe cannot be reached.
    """
    if settings.CREDITS_REQUIRE_SUBSCRIPTION and not has_active_subscription(user):
        raise SubscriptionRequired("Credit packages need an active Essential subscription.")
    # A second click reuses the open payment instead of starting another charge.
    payment = (
        Payment.objects.filter(
            user=user,
            package=package,
            status=S.PENDING,
            stripe_payment_intent_id__isnull=False,
            created_at__gte=_now() - PENDING_REUSE_WINDOW,
        )
        .order_by("-created_at")
        .first()
    )
    if payment is not None:
        return payment, get_gateway().retrieve_payment_intent(payment.stripe_payment_intent_id)
    return start_card_payment(
        user=user,
        purpose=Purpose.CREDIT_PACKAGE,
        amount_cents=package.price_cents,
        description=f"SoundStudio {package.name}: {package.credits} credits",
        metadata={"package": package.slug},
        package=package,
    )


# --- Completion (webhook and reconciliation) ------------------------------------------


def _charge_id(obj: dict) -> str:
    """The id of an intent's latest charge (or an invoice's charge), expanded or not."""
    charge = obj.get("latest_charge") or obj.get("charge")
    if isinstance(charge, dict):
        charge = charge.get("id")
    return charge or ""


def _card_fee(*, charge_id: str | None, amount: int) -> int | None:
    """The card fee Stripe took, or None when it cannot say (localstripe, an outage)."""
    try:
        return get_gateway().card_fee(charge_id=charge_id, amount=amount)
    except GatewayError:
        logger.warning("card fee unknown", extra={"charge": charge_id})
        return None


def _post_fee(payment: Payment, *, source_id: str, fee_cents: int | None, cause_ref: str) -> None:
    if fee_cents:
        books.post(
            key=f"books:fee:{source_id}",
            event="card_fee",
            lines=[(AccountCode.PROCESSOR_FEES, fee_cents), (AccountCode.CASH, -fee_cents)],
            cause=JournalCause.STRIPE,
            cause_ref=cause_ref,
            payment=payment,
        )


def _matches(payment: Payment, intent: dict) -> bool:
    received = intent.get("amount_received") or intent.get("amount")
    return (
        received == payment.amount_cents
        and str(intent.get("currency", "")).lower() == payment.currency.lower()
    )


def complete_from_intent(intent: dict, *, cause_ref: str) -> Payment:
    """Apply a succeeded PaymentIntent: fulfil its purpose once, with its money in.

    An intent whose amount or currency differs from ours is not fulfilled: the
    payment is failed and flagged for admins.
    """
    if intent.get("status") != "succeeded":
        raise ValueError(f"PaymentIntent {intent['id']} is {intent.get('status')}, not succeeded")
    # Asked before any lock is taken: Stripe may be slow.
    fee = _card_fee(charge_id=_charge_id(intent), amount=intent["amount"])
    with transaction.atomic():
        payment = _locked_payment_for_intent(intent)
        if payment.status not in (S.PENDING, S.FAILED):
            return payment  # done already (or canceled: reconciliation flags that)
        fulfilment = fulfilment_for(payment.purpose)
        if not _matches(payment, intent):
            logger.error(
                "payment amount mismatch",
                extra={
                    "payment_id": payment.pk,
                    "intent": intent["id"],
                    "ours": [payment.amount_cents, payment.currency],
                    "stripe": [intent.get("amount_received"), intent.get("currency")],
                },
            )
            payment.flag = PaymentFlag.AMOUNT_MISMATCH
            payment.failure_message = (
                f"Stripe reports {intent.get('amount_received')} {intent.get('currency')}; "
                f"we expected {payment.amount_cents} {payment.currency}. Not fulfilled."
            )[:500]
            fields = ("flag", "failure_message")
            if payment.status == S.PENDING:
                set_status(payment, S.FAILED, extra_fields=fields)
            else:
                payment.save(update_fields=[*fields, "updated_at"])
            record_attempt(
                payment,
                outcome=AttemptOutcome.FAILED,
                key="amount_mismatch",
                cause_ref=cause_ref,
                code="amount_mismatch",
                message=payment.failure_message,
            )
            fulfilment.failed(payment=payment, canceled=True, cause_ref=cause_ref)
            return payment
        fulfilment.fulfil(payment=payment, intent=intent, fee_cents=fee, cause_ref=cause_ref)
        payment.fee_cents = fee
        payment.stripe_charge_id = _charge_id(intent)
        payment.failure_message = ""
        _post_fee(payment, source_id=intent["id"], fee_cents=fee, cause_ref=cause_ref)
        set_status(
            payment,
            S.SUCCEEDED,
            extra_fields=("lot", "fee_cents", "stripe_charge_id", "failure_message"),
        )
        record_attempt(
            payment, outcome=AttemptOutcome.SUCCEEDED, key="succeeded", cause_ref=cause_ref
        )
    return payment


def fail_from_intent(intent: dict, *, cause_ref: str) -> Payment:
    """Record a failed attempt (the buyer may still retry and succeed later), or a
    PaymentIntent Stripe has canceled."""
    error = intent.get("last_payment_error") or {}
    canceled = intent.get("status") == "canceled"
    new_status = S.CANCELED if canceled else S.FAILED
    with transaction.atomic():
        payment = _locked_payment_for_intent(intent)
        if payment.status in (S.PENDING, S.FAILED):
            default = "The payment was canceled." if canceled else "The payment failed."
            payment.failure_message = (error.get("message") or default)[:500]
            if payment.status != new_status:
                set_status(payment, new_status, extra_fields=("failure_message",))
            else:
                payment.save(update_fields=["failure_message", "updated_at"])
            record_attempt(
                payment, cause_ref=cause_ref, **_attempt_of_intent(intent, cause_ref=cause_ref)
            )
            fulfilment_for(payment.purpose).failed(
                payment=payment, canceled=canceled, cause_ref=cause_ref
            )
        # A late failure event for a payment that already succeeded changes nothing.
    return payment


def record_invoice_payment(*, invoice: dict, user_id: int, cause_ref: str) -> Payment | None:
    """An Essential invoice was paid: one Payment row (every dollar in is a Payment),
    fulfilled like any other. None for an invoice of nothing (a trial, a credit)."""
    amount = invoice.get("amount_paid") or 0
    if amount <= 0:
        return None
    fee = _card_fee(charge_id=_charge_id(invoice), amount=amount)
    with transaction.atomic():
        try:
            with transaction.atomic():
                Payment.objects.create(
                    user_id=user_id,
                    purpose=Purpose.ESSENTIAL,
                    amount_cents=amount,
                    currency=invoice.get("currency") or "usd",
                    stripe_invoice_id=invoice["id"],
                )
        except IntegrityError:
            pass  # recorded by an earlier or concurrent delivery
        payment = Payment.objects.select_for_update().get(stripe_invoice_id=invoice["id"])
        if payment.status != S.PENDING:
            return payment
        fulfilment_for(payment.purpose).fulfil(
            payment=payment, intent=invoice, fee_cents=fee, cause_ref=cause_ref
        )
        payment.fee_cents = fee
        payment.stripe_charge_id = _charge_id(invoice)
        _post_fee(payment, source_id=invoice["id"], fee_cents=fee, cause_ref=cause_ref)
        set_status(payment, S.SUCCEEDED, extra_fields=("fee_cents", "stripe_charge_id"))
        record_attempt(
            payment, outcome=AttemptOutcome.SUCCEEDED, key="succeeded", cause_ref=cause_ref
        )
    return payment


# --- Refunds ------------------------------------------------------------------------


def apply_refund(
    *,
    payment: Payment,
    refund_id: str,
    amount_cents: int,
    cause_ref: str,
    staff_user=None,
    reason: str = "",
) -> Payment:
    """Apply one Stripe refund of a paid payment, once per refund id."""
    with transaction.atomic():
        payment = lock_payment(payment.pk)
        if Refund.objects.filter(stripe_refund_id=refund_id).exists():
            return payment  # under the payment's lock: no concurrent twin can be halfway
        if payment.status not in PAID_STATUSES:
            raise InvalidTransition(f"Payment {payment.pk} is {payment.status}: nothing to refund")
        amount_cents = min(amount_cents, payment.amount_cents - payment.refunded_cents)
        if amount_cents <= 0:
            logger.warning(
                "refund beyond the payment ignored",
                extra={"payment_id": payment.pk, "refund": refund_id},
            )
            return payment
        Refund.objects.create(
            payment=payment,
            stripe_refund_id=refund_id,
            amount_cents=amount_cents,
            staff_user=staff_user,
            reason=reason,
            cause_ref=cause_ref[:200],
            created_at=_now(),
        )
        payment.refunded_cents += amount_cents
        fulfilment_for(payment.purpose).refunded(
            payment=payment,
            refund_id=refund_id,
            amount_cents=amount_cents,
            refunded_total_cents=payment.refunded_cents,
            cause_ref=cause_ref,
        )
        new_status = (
            S.REFUNDED if payment.refunded_cents >= payment.amount_cents else (S.PARTIALLY_REFUNDED)
        )
        fields = ("refunded_cents", "refund_shortfall_credits")
        if payment.status == S.DISPUTED:
            payment.disputed_from = new_status  # what a won dispute restores
            payment.save(update_fields=[*fields, "disputed_from", "updated_at"])
        elif payment.status != new_status:
            set_status(payment, new_status, extra_fields=fields)
        else:
            payment.save(update_fields=[*fields, "updated_at"])
    logger.info(
        "payment refunded",
        extra={
            "payment_id": payment.pk,
            "purpose": payment.purpose,
            "refund": refund_id,
            "amount_cents": amount_cents,
            "refunded_total_cents": payment.refunded_cents,
        },
    )
    return payment


def _payment_paid_at_stripe(intent_id: str, *, cause_ref: str) -> Payment | None:
    """Our payment of a PaymentIntent, completed from Stripe's copy if we never saw it
    succeed; None when the intent is not ours."""
    payment = Payment.objects.filter(stripe_payment_intent_id=intent_id).first()
    if payment is None or payment.status in (S.PENDING, S.FAILED):
        intent = get_gateway().retrieve_payment_intent(intent_id)
        if payment is None and not _is_ours(intent):
            return None
        if intent.get("status") == "succeeded":
            payment = complete_from_intent(intent, cause_ref=cause_ref)
    return payment


def _is_ours(obj: dict) -> bool:
    from payments.purposes import is_ours

    return is_ours((obj.get("metadata") or {}).get("purpose"))


def refund_from_charge(charge: dict, *, cause_ref: str) -> Payment | None:
    """Apply a refunded charge: each of its refunds once, by refund id.

    Newer API versions leave `refunds` out of the charge, so the refunds are asked
    of Stripe when the event does not carry them.
    """
    intent_id = charge.get("payment_intent")
    if not intent_id:
        return None
    payment = _payment_paid_at_stripe(intent_id, cause_ref=cause_ref)
    if payment is None or payment.status not in PAID_STATUSES:
        return payment
    listed = (charge.get("refunds") or {}).get("data")
    if listed is None:
        listed = get_gateway().list_refunds(payment_intent_id=intent_id)
    for refund in sorted(listed, key=lambda r: (r.get("created") or 0, r["id"])):
        if refund.get("status", "succeeded") != "succeeded":
            continue
        payment = apply_refund(
            payment=payment,
            refund_id=refund["id"],
            amount_cents=refund["amount"],
            cause_ref=cause_ref,
        )
    # A Stripe that lists no refunds (an emulator) still says how much was refunded.
    total = charge.get("amount_refunded") or 0
    payment.refresh_from_db()
    if total > payment.refunded_cents:
        payment = apply_refund(
            payment=payment,
            refund_id=f"{charge.get('id') or intent_id}:refunded:{total}",
            amount_cents=total - payment.refunded_cents,
            cause_ref=cause_ref,
        )
    return payment


def request_refund(
    *, payment: Payment, amount_cents: int | None = None, staff_user=None, reason: str = ""
) -> dict:
    """Refund a paid payment through Stripe (in full when `amount_cents` is None).

    The refund is applied at once when Stripe says it succeeded; charge.refunded then
    finds its refund id applied and changes nothing.
    """
    payment.refresh_from_db()
    left = payment.amount_cents - payment.refunded_cents
    if payment.status not in (S.SUCCEEDED, S.PARTIALLY_REFUNDED) or not (
        payment.stripe_payment_intent_id
    ):
        raise InvalidTransition("Only a paid card payment can be refunded.")
    amount_cents = left if amount_cents is None else amount_cents
    if not 0 < amount_cents <= left:
        raise ValueError(f"A refund of this payment is between $0.01 and ${left / 100:,.2f}.")
    refund = get_gateway().create_refund(
        payment_intent_id=payment.stripe_payment_intent_id,
        amount=amount_cents,
        # The same request (same state, same amount) never refunds twice.
        idempotency_key=f"payment:{payment.pk}:refund:{payment.refunded_cents}+{amount_cents}",
    )
    Payment.objects.filter(pk=payment.pk).update(refund_requested_at=_now())
    if refund.get("status") == "succeeded":
        apply_refund(
            payment=payment,
            refund_id=refund["id"],
            amount_cents=refund["amount"],
            cause_ref=refund["id"],
            staff_user=staff_user,
            reason=reason,
        )
    return refund


# --- Disputes -----------------------------------------------------------------------

WON_DISPUTE_STATUSES = ("won", "warning_closed")


def _payment_of_dispute(dispute: dict) -> Payment | None:
    intent_id = dispute.get("payment_intent")
    if intent_id:
        payment = Payment.objects.filter(stripe_payment_intent_id=intent_id).first()
        if payment is not None:
            return payment
    charge_id = dispute.get("charge")
    if charge_id:
        return Payment.objects.filter(stripe_charge_id=charge_id).first()
    return None


def open_dispute(*, dispute: dict, cause_ref: str) -> Payment | None:
    """charge.dispute.created: suspend what the payment bought until it closes."""
    payment = _payment_of_dispute(dispute)
    if payment is None:
        return None
    with transaction.atomic():
        payment = lock_payment(payment.pk)
        if payment.status not in (S.SUCCEEDED, S.PARTIALLY_REFUNDED):
            return payment  # disputed already, or nothing left to dispute
        payment.disputed_from = payment.status
        set_status(payment, S.DISPUTED, extra_fields=("disputed_from",))
        fulfilment_for(payment.purpose).dispute_opened(
            payment=payment, dispute=dispute, cause_ref=cause_ref
        )
    logger.info("payment disputed", extra={"payment_id": payment.pk, "dispute": dispute["id"]})
    return payment


def close_dispute(*, dispute: dict, cause_ref: str) -> Payment | None:
    """charge.dispute.closed: a dispute won restores the payment; one lost is applied
    like a refund of what was left (refund id = the dispute's id)."""
    payment = _payment_of_dispute(dispute)
    if payment is None:
        return None
    won = dispute.get("status") in WON_DISPUTE_STATUSES
    with transaction.atomic():
        payment = lock_payment(payment.pk)
        if payment.status != S.DISPUTED:
            return payment
        set_status(payment, payment.disputed_from or S.SUCCEEDED)
        fulfilment_for(payment.purpose).dispute_closed(
            payment=payment, dispute=dispute, won=won, cause_ref=cause_ref
        )
        left = payment.amount_cents - payment.refunded_cents
        if not won and left > 0:
            payment = apply_refund(
                payment=payment,
                refund_id=dispute["id"],
                amount_cents=min(dispute.get("amount") or left, left),
                cause_ref=cause_ref,
            )
    logger.info(
        "dispute closed",
        extra={"payment_id": payment.pk, "dispute": dispute["id"], "won": won},
    )
    return payment


# --- Reconciliation -----------------------------------------------------------------


def reconcile(*, now: dt.datetime | None = None) -> list[str]:
    """Ask Stripe about payments pending for over 10 minutes; complete or fail them.
    Cancel the PaymentIntents left unpaid for 24 hours (completing any Stripe says
    were paid after all).

    One payment's error is logged and reported, and the sweep goes on.
    """
    now = now or _now()
    gateway = get_gateway()
    report = []
    stale = Payment.objects.filter(
        status=S.PENDING,
        created_at__lte=now - RECONCILE_AFTER,
        stripe_payment_intent_id__isnull=False,
    ).order_by("created_at")
    abandoned = Payment.objects.filter(
        status__in=(S.PENDING, S.FAILED),
        created_at__lte=now - ABANDONED_AFTER,
        stripe_payment_intent_id__isnull=False,
    ).order_by("created_at")
    for payment in abandoned.iterator():
        try:
            payment = cancel_intent(payment=payment, cause_ref="reconcile")
            report.append(f"payment {payment.pk}: unpaid for 24 hours, {payment.status}")
        except GatewayError as exc:
            report.append(f"payment {payment.pk}: could not cancel ({exc})")
        except Exception as exc:
            logger.exception("cancel failed", extra={"payment_id": payment.pk})
            report.append(f"payment {payment.pk}: error ({exc.__class__.__name__}: {exc})")
    for payment in stale.iterator():
        try:
            intent = gateway.retrieve_payment_intent(payment.stripe_payment_intent_id)
            status = intent.get("status")
            if status == "succeeded":
                payment = complete_from_intent(intent, cause_ref="reconcile")
                outcome = "completed" if payment.status == S.SUCCEEDED else payment.status
                report.append(f"payment {payment.pk}: {outcome} ({intent['id']})")
            elif status == "canceled" or intent.get("last_payment_error"):
                payment = fail_from_intent(intent, cause_ref="reconcile")
                report.append(f"payment {payment.pk}: marked {payment.status} ({intent['id']})")
        except GatewayError as exc:
            report.append(f"payment {payment.pk}: could not ask Stripe ({exc})")
        except Exception as exc:
            logger.exception("reconciliation failed", extra={"payment_id": payment.pk})
            report.append(f"payment {payment.pk}: error ({exc.__class__.__name__}: {exc})")
    return report


# --- The reconciliation desk's actions (staff, with a reason; recorded) ---------------


def _record_action(*, staff_user, action: str, payment, reason: str, outcome: str, ok: bool):
    from payments.models import StaffAction

    return StaffAction.objects.create(
        staff_user=staff_user,
        action=action,
        payment=payment,
        subject=f"payment {payment.pk}" if payment else "",
        reason=reason,
        outcome=outcome[:500],
        ok=ok,
        created_at=_now(),
    )


def _desk_action(action: str):
    """Run a desk action with a reason, and record it (and its failure) with the staff user."""

    def wrap(fn):
        def run(*, payment: Payment, staff_user, reason: str, **kwargs):
            reason = (reason or "").strip()
            if not reason:
                raise ValueError("Give a reason: it is recorded with the action.")
            if staff_user is None or not staff_user.is_staff:
                raise PermissionError("Only staff can act on payments.")
            try:
                outcome = fn(payment=payment, staff_user=staff_user, reason=reason, **kwargs)
            except (GatewayError, InvalidTransition, ValueError) as exc:
                _record_action(
                    staff_user=staff_user,
                    action=action,
                    payment=payment,
                    reason=reason,
                    outcome=f"failed: {exc}",
                    ok=False,
                )
                raise
            logger.info(
                "staff payment action",
                extra={"action": action, "payment_id": payment.pk, "staff_user": staff_user.pk},
            )
            return _record_action(
                staff_user=staff_user,
                action=action,
                payment=payment,
                reason=reason,
                outcome=outcome,
                ok=True,
            )

        run.__doc__ = fn.__doc__
        run.__name__ = fn.__name__
        return run

    return wrap


@_desk_action("settle")
def settle_from_stripe(*, payment: Payment, staff_user, reason: str) -> str:
    """Bring a payment in line with Stripe's copy, through the webhook's own services:
    complete (or fail) it from its PaymentIntent, then apply Stripe's refunds."""
    if not payment.stripe_payment_intent_id:
        raise ValueError("This payment has no PaymentIntent to settle from.")
    cause_ref = f"desk:settle:{staff_user.pk}"
    intent = get_gateway().retrieve_payment_intent(payment.stripe_payment_intent_id)
    status = intent.get("status")
    if status == "succeeded":
        payment = complete_from_intent(intent, cause_ref=cause_ref)
        payment = (
            refund_from_charge(
                {"payment_intent": intent["id"], "id": _charge_id(intent)}, cause_ref=cause_ref
            )
            or payment
        )
    elif status == "canceled" or intent.get("last_payment_error"):
        payment = fail_from_intent(intent, cause_ref=cause_ref)
    payment.refresh_from_db()
    return f"Stripe says {status}; the payment is {payment.status}."


@_desk_action("replay")
def replay_payment_events(*, payment: Payment, staff_user, reason: str) -> str:
    """Apply again the failed Stripe events about this payment."""
    from payments.reconciliation import _failed_events
    from webhooks import services as webhook_services
    from webhooks.models import WebhookEvent

    ids = _failed_events().get(payment.stripe_payment_intent_id or "", [])
    if not ids:
        raise ValueError("No failed events about this payment.")
    outcomes = []
    for event in WebhookEvent.objects.filter(pk__in=ids).order_by("received_at"):
        stored = webhook_services.replay(event=event)
        outcomes.append(f"{stored.stripe_event_id}: {stored.status}")
    return "; ".join(outcomes)


@_desk_action("refund")
def refund_from_desk(
    *, payment: Payment, staff_user, reason: str, amount_cents: int | None = None
) -> str:
    """Refund through Stripe: a paid payment by the usual rules (credits voided, access
    revoked); money Stripe took for a payment we refused (an amount mismatch) in full."""
    payment.refresh_from_db()
    if payment.status in (S.SUCCEEDED, S.PARTIALLY_REFUNDED):
        refund = request_refund(
            payment=payment, amount_cents=amount_cents, staff_user=staff_user, reason=reason
        )
    elif payment.flag == PaymentFlag.AMOUNT_MISMATCH and payment.stripe_payment_intent_id:
        refund = get_gateway().create_refund(
            payment_intent_id=payment.stripe_payment_intent_id,
            amount=None,
            idempotency_key=f"payment:{payment.pk}:refund-mismatch",
        )
    else:
        raise InvalidTransition(f"A {payment.get_status_display().lower()} payment has no refund.")
    return f"Refund {refund['id']} of ${refund['amount'] / 100:,.2f}: {refund.get('status')}."


def cancel_intent(*, payment: Payment, cause_ref: str) -> Payment:
    """Cancel an unpaid PaymentIntent at Stripe and close its payment; if Stripe says it
    was paid meanwhile, complete it instead."""
    gateway = get_gateway()
    intent_id = payment.stripe_payment_intent_id
    try:
        intent = gateway.cancel_payment_intent(
            intent_id, idempotency_key=f"payment:{payment.pk}:cancel"
        )
    except GatewayError:
        intent = gateway.retrieve_payment_intent(intent_id)
        if intent.get("status") == "succeeded":
            return complete_from_intent(intent, cause_ref=cause_ref)
        if intent.get("status") != "canceled":
            raise
    return fail_from_intent(intent, cause_ref=cause_ref)


@_desk_action("cancel")
def cancel_from_desk(*, payment: Payment, staff_user, reason: str) -> str:
    """Cancel an abandoned PaymentIntent so that it can never be paid."""
    if payment.status not in (S.PENDING, S.FAILED) or not payment.stripe_payment_intent_id:
        raise InvalidTransition("Only an unpaid payment with a PaymentIntent can be canceled.")
    payment = cancel_intent(payment=payment, cause_ref=f"desk:cancel:{staff_user.pk}")
    return f"The payment is {payment.status}."
