"""State changes of card payments: buying credit packages, completion, refunds.

The webhook handlers and the reconciliation job both end here, so a payment is
completed by the same code whichever learns of it first, exactly once: the payment
row is locked, and the credit grant's idempotency key is derived from the
PaymentIntent id.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from credits import services as credit_services
from credits.models import Cause, CreditPackage, LotSource
from payments.gateway import GatewayError, get_gateway
from payments.models import Payment, PaymentStatus, Purpose
from subscriptions.selectors import has_active_subscription

logger = logging.getLogger(__name__)

RECONCILE_AFTER = dt.timedelta(minutes=10)
PENDING_REUSE_WINDOW = dt.timedelta(minutes=30)

# The allowed moves of a payment's status; anything else is a bug or a stale event.
TRANSITIONS: dict[str, set[str]] = {
    PaymentStatus.PENDING: {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELED},
    PaymentStatus.FAILED: {PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED},
    PaymentStatus.SUCCEEDED: {PaymentStatus.REFUNDED},
    PaymentStatus.CANCELED: set(),
    PaymentStatus.REFUNDED: set(),
}


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
    if new_status == PaymentStatus.SUCCEEDED:
        payment.completed_at = _now()
        extra_fields = (*extra_fields, "completed_at")
    payment.save(update_fields=["status", "updated_at", *extra_fields])


# --- Starting a purchase ------------------------------------------------------------


def start_package_purchase(*, user, package: CreditPackage) -> tuple[Payment, dict]:
    """Record a pending payment and create its PaymentIntent; return both.

    Raises SubscriptionRequired (nothing is created) when the setting requires
    Essential and the user has none, and GatewayError when Stripe cannot be reached.
    """
    if settings.CREDITS_REQUIRE_SUBSCRIPTION and not has_active_subscription(user):
        raise SubscriptionRequired("Credit packages need an active Essential subscription.")
    gateway = get_gateway()
    # A second click reuses the open payment instead of starting another charge.
    payment = (
        Payment.objects.filter(
            user=user,
            package=package,
            status=PaymentStatus.PENDING,
            stripe_payment_intent_id__isnull=False,
            created_at__gte=_now() - PENDING_REUSE_WINDOW,
        )
        .order_by("-created_at")
        .first()
    )
    if payment is not None:
        return payment, gateway.retrieve_payment_intent(payment.stripe_payment_intent_id)

    # Committed before Stripe is called, so a webhook that outruns our response
    # finds it through the payment_id in the metadata.
    payment = Payment.objects.create(
        user=user,
        purpose=Purpose.CREDIT_PACKAGE,
        package=package,
        amount_cents=package.price_cents,
    )
    try:
        intent = gateway.create_payment_intent(
            amount=package.price_cents,
            currency="usd",
            description=f"SoundStudio {package.name}: {package.credits} credits",
            metadata={
                "purpose": Purpose.CREDIT_PACKAGE,
                "user_id": str(user.pk),
                "package": package.slug,
                "payment_id": str(payment.pk),
            },
            idempotency_key=f"payment:{payment.pk}:create-intent",
        )
    except GatewayError as exc:
        with transaction.atomic():
            payment = Payment.objects.select_for_update().get(pk=payment.pk)
            payment.failure_message = str(exc)[:500]
            set_status(payment, PaymentStatus.FAILED, extra_fields=("failure_message",))
        raise
    Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id__isnull=True).update(
        stripe_payment_intent_id=intent["id"], client_secret=intent.get("client_secret") or ""
    )
    payment.refresh_from_db()
    return payment, intent


# --- Completion (webhook and reconciliation) ------------------------------------------


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
        package = None
        if purpose == Purpose.CREDIT_PACKAGE:
            package = CreditPackage.objects.get(slug=metadata["package"])
        try:
            with transaction.atomic():
                Payment.objects.create(
                    user_id=int(metadata["user_id"]),
                    purpose=purpose,
                    package=package,
                    amount_cents=intent["amount"],
                    currency=intent.get("currency", "usd"),
                    stripe_payment_intent_id=intent_id,
                )
        except IntegrityError:
            pass  # created concurrently by another delivery; lock that one below
        payment = Payment.objects.select_for_update().get(stripe_payment_intent_id=intent_id)
    return payment


def complete_from_intent(intent: dict, *, cause_ref: str) -> Payment:
    """Apply a succeeded PaymentIntent: grant the package's credits once."""
    if intent.get("status") != "succeeded":
        raise ValueError(f"PaymentIntent {intent['id']} is {intent.get('status')}, not succeeded")
    with transaction.atomic():
        payment = _locked_payment_for_intent(intent)
        if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED):
            return payment
        if payment.purpose == Purpose.CREDIT_PACKAGE:
            package = payment.package
            now = _now()
            expires_at = (
                now + dt.timedelta(days=package.expires_after_days)
                if package.expires_after_days
                else None
            )
            payment.lot = credit_services.grant(
                user=payment.user,
                amount=package.credits,
                source=LotSource.PACKAGE,
                idempotency_key=f"grant:{intent['id']}",
                expires_at=expires_at,
                package=package,
                cost_cents=intent.get("amount_received") or intent["amount"],
                cause=Cause.STRIPE,
                cause_ref=cause_ref,
                memo=f"{package.name} package",
            )
            payment.failure_message = ""
            set_status(payment, PaymentStatus.SUCCEEDED, extra_fields=("lot", "failure_message"))
        else:
            raise ValueError(f"Payment {payment.pk}: no completion for {payment.purpose!r}")
    return payment


def fail_from_intent(intent: dict, *, cause_ref: str) -> Payment:
    """Record a failed attempt (the buyer may still retry and succeed later), or a
    PaymentIntent Stripe has canceled."""
    error = intent.get("last_payment_error") or {}
    canceled = intent.get("status") == "canceled"
    new_status = PaymentStatus.CANCELED if canceled else PaymentStatus.FAILED
    with transaction.atomic():
        payment = _locked_payment_for_intent(intent)
        if payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED):
            default = "The payment was canceled." if canceled else "The payment failed."
            payment.failure_message = (error.get("message") or default)[:500]
            if payment.status != new_status:
                set_status(payment, new_status, extra_fields=("failure_message",))
            else:
                payment.save(update_fields=["failure_message", "updated_at"])
        # A late failure event for a payment that already succeeded changes nothing.
    return payment


def refund_from_charge(charge: dict, *, cause_ref: str) -> Payment:
    """Apply a refunded charge: void the unused credits, record the shortfall."""
    intent_id = charge["payment_intent"]
    payment = Payment.objects.filter(stripe_payment_intent_id=intent_id).first()
    if payment is None or payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED):
        # We never saw it succeed: complete it from Stripe's copy first, then refund.
        complete_from_intent(get_gateway().retrieve_payment_intent(intent_id), cause_ref=cause_ref)
    with transaction.atomic():
        payment = _locked_payment_for_intent({"id": intent_id})
        if payment.status == PaymentStatus.REFUNDED:
            return payment
        payment.refunded_cents = charge.get("amount_refunded") or payment.amount_cents
        if payment.purpose == Purpose.CREDIT_PACKAGE and payment.lot_id:
            entry = credit_services.void_lot(
                lot=payment.lot,
                idempotency_key=f"void:refund:{intent_id}",
                reason="Card payment refunded",
                cause=Cause.STRIPE,
                cause_ref=cause_ref,
            )
            voided = -entry.amount if entry else 0
            payment.refund_shortfall_credits = payment.lot.amount - voided
        set_status(
            payment,
            PaymentStatus.REFUNDED,
            extra_fields=("refunded_cents", "refund_shortfall_credits"),
        )
    return payment


def request_refund(*, payment: Payment) -> dict:
    """Admin: refund a succeeded payment through Stripe; the webhook applies it."""
    if payment.status != PaymentStatus.SUCCEEDED or not payment.stripe_payment_intent_id:
        raise InvalidTransition("Only a succeeded card payment can be refunded.")
    refund = get_gateway().create_refund(
        payment_intent_id=payment.stripe_payment_intent_id,
        idempotency_key=f"payment:{payment.pk}:refund",
    )
    Payment.objects.filter(pk=payment.pk).update(refund_requested_at=_now())
    if refund.get("status") == "succeeded":
        # Apply it now rather than wait for charge.refunded; that event then finds
        # the payment refunded and changes nothing.
        refund_from_charge(
            {
                "payment_intent": payment.stripe_payment_intent_id,
                "amount_refunded": refund["amount"],
            },
            cause_ref=refund["id"],
        )
    return refund


# --- Reconciliation -----------------------------------------------------------------


def reconcile(*, now: dt.datetime | None = None) -> list[str]:
    """Ask Stripe about payments pending for over 10 minutes; complete or fail them."""
    now = now or _now()
    gateway = get_gateway()
    report = []
    stale = Payment.objects.filter(
        status=PaymentStatus.PENDING,
        created_at__lte=now - RECONCILE_AFTER,
        stripe_payment_intent_id__isnull=False,
    ).order_by("created_at")
    for payment in stale.iterator():
        try:
            intent = gateway.retrieve_payment_intent(payment.stripe_payment_intent_id)
        except GatewayError as exc:
            report.append(f"payment {payment.pk}: could not ask Stripe ({exc})")
            continue
        status = intent.get("status")
        if status == "succeeded":
            complete_from_intent(intent, cause_ref="reconcile")
            report.append(f"payment {payment.pk}: completed ({intent['id']})")
        elif status == "canceled" or intent.get("last_payment_error"):
            payment = fail_from_intent(intent, cause_ref="reconcile")
            report.append(f"payment {payment.pk}: marked {payment.status} ({intent['id']})")
    return report
