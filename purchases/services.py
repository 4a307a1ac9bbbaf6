"""State changes of fan purchases (DESIGN.md section 1, "Fan purchases").

Buy pays with credits when the fan's balance covers the price (the spend, the
purchase and its posting in one transaction; the allowance never pays), otherwise it
makes a pending purchase and its PaymentIntent together. A card purchase completes
only through the payment purpose registry (`purchases.fulfilment`), after payments
has checked Stripe's amount and currency against ours.

The one lock order, shared with payments and credits:

    payment row (payments: webhook, refunds) -> purchase row -> the fan's wallet

`buy` claims its purchase with an INSERT that the partial unique index serialises
(a concurrent Buy of the same track waits there for the first one's outcome, never
on a wallet it holds) and only then spends. Fulfilment runs under the payment's
lock and takes the purchase's (`lock_purchase`). A staff refund of a card purchase
calls payments first and holds no purchase lock while it does.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from core.queue import delay_on_commit
from credits import services as credit_services
from credits.exceptions import InsufficientCredits
from credits.models import Cause
from payments import services as payment_services
from payments.models import Purpose
from purchases import postings, selectors
from purchases.models import LIVE, PaymentMethod, Purchase, PurchaseFlag, PurchaseStatus
from purchases.pricing import CARD_CENTS_PER_CREDIT, card_price_cents
from tracks.models import TrackStatus

logger = logging.getLogger(__name__)

S = PurchaseStatus

# The allowed moves of a purchase's status. A failed card attempt may be retried
# (the same PaymentIntent can still succeed); a dispute closes back to completed
# (won) or, through its refund, to refunded.
TRANSITIONS: dict[str, set[str]] = {
    S.PENDING: {S.COMPLETED, S.FAILED, S.CANCELED},
    S.FAILED: {S.PENDING, S.COMPLETED, S.CANCELED},
    S.COMPLETED: {S.REFUNDED, S.DISPUTED},
    S.DISPUTED: {S.COMPLETED, S.REFUNDED},
    S.CANCELED: set(),
    S.REFUNDED: set(),
}


class PurchaseError(Exception):
    """A Buy that cannot go ahead; nothing was charged. `code` is the API's error."""

    code = "purchase_error"
    status = 400

    def __init__(self, message: str, *, purchase: Purchase | None = None):
        super().__init__(message)
        self.message = message
        self.purchase = purchase


class TrackUnavailable(PurchaseError):
    code, status = "not_found", 404


class OwnTrack(PurchaseError):
    code, status = "own_track", 403


class AlreadyOwned(PurchaseError):
    code, status = "already_owned", 409


class NotForSale(PurchaseError):
    code, status = "not_for_sale", 409


class InvalidTransition(Exception):
    pass


@dataclass(frozen=True)
class BuyResult:
    purchase: Purchase
    balance: int | None = None  # credits left after a credit purchase
    intent: dict | None = None  # the PaymentIntent of a card purchase ({id, client_secret})


def _now() -> dt.datetime:
    return timezone.now()


def can_move(purchase: Purchase, new_status: str) -> bool:
    return new_status in TRANSITIONS[purchase.status]


def set_status(purchase: Purchase, new_status: str, *, extra_fields: tuple[str, ...] = ()) -> None:
    """Move a locked purchase to a new status, or raise InvalidTransition."""
    if not can_move(purchase, new_status):
        raise InvalidTransition(f"Purchase {purchase.pk}: {purchase.status} -> {new_status}")
    purchase.status = new_status
    _write(purchase, ("status", "updated_at", *extra_fields))


_FIELDS = {field.name: field for field in Purchase._meta.concrete_fields}


def _write(purchase: Purchase, fields: tuple[str, ...]) -> None:
    """The UPDATE that save(update_fields=fields) sends, built without the ORM's query
    machinery: it is on every purchase's path, where compiling the query cost more
    than running it (bench/purchases.py)."""
    columns = [_FIELDS[name] for name in fields]
    values = [f.get_db_prep_save(f.pre_save(purchase, add=False), connection) for f in columns]
    assignments = ", ".join(f"{f.column} = %s" for f in columns)  # names from the model
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE purchases_purchase SET {assignments} WHERE id = %s",  # noqa: S608
            [*values, purchase.pk],
        )


# --- Locks ------------------------------------------------------------------------


def lock_purchase(pk: int) -> Purchase:
    """Lock one purchase: after its payment's lock, before the fan's wallet."""
    return _locking().get(pk=pk)


def _locking():
    # of=self: the joined track, artist and payment rows are read, not locked.
    return Purchase.objects.select_for_update(of=("self",)).select_related("track__creator")


def _lock_purchase_of_payment(payment, intent: dict | None = None) -> Purchase | None:
    """The locked purchase a payment pays for (the payment is locked already)."""
    purchase = _locking().filter(payment_id=payment.pk).first()
    if purchase is None and intent is not None:
        purchase = _purchase_from_metadata(payment, intent.get("metadata") or {})
    if purchase is not None:
        purchase.payment = payment  # the caller's locked, up-to-date instance
    return purchase


def _purchase_from_metadata(payment, metadata: dict) -> Purchase | None:
    """A paid intent whose payment has no purchase of ours: Stripe is the truth.

    Our own purchase and its payment are made in one transaction, so this is a
    payment made elsewhere (or restored from a backup) for one of our tracks.
    """
    track_id = str(metadata.get("track_id", ""))
    if not track_id.isdigit():
        raise ValueError(f"Payment {payment.pk} names no track to fulfil")
    purchase = Purchase(
        fan_id=payment.user_id,
        track_id=int(track_id),
        status=S.PENDING,
        payment_method=PaymentMethod.CARD,
        price_credits=max(1, payment.amount_cents // CARD_CENTS_PER_CREDIT),
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        payment=payment,
    )
    if not _insert_unless_live(purchase):
        raise ValueError(
            f"Payment {payment.pk} paid for track {track_id}, which user {payment.user_id}"
            " already owns or is paying for otherwise: refund it"
        )
    return lock_purchase(purchase.pk)


# --- Buy ----------------------------------------------------------------------------


def buy(*, fan, track) -> BuyResult:
    """Buy a track at its current price: with credits if they cover it, else by card.

    Raises TrackUnavailable, OwnTrack, NotForSale or AlreadyOwned (nothing charged),
    and payments.gateway.GatewayError when Stripe cannot be reached (nothing kept).
    A Buy while a card payment for the track is under way returns that purchase and
    its PaymentIntent again.
    """
    if not track.is_published or track.status != TrackStatus.READY:
        raise TrackUnavailable("No such track.")
    if track.creator_id == fan.pk:
        raise OwnTrack("This is your own track: it is already yours to download.")
    if not track.for_sale:
        if selectors.owns(fan, track):
            raise AlreadyOwned("This track is already in your collection.")
        raise NotForSale("The artist is not selling this track.")
    price = track.price_credits
    with transaction.atomic():
        purchase = Purchase(
            fan=fan,
            track=track,
            status=S.PENDING,
            payment_method=PaymentMethod.CREDITS,
            price_credits=price,
            amount_cents=card_price_cents(price),
        )
        if not _insert_unless_live(purchase):
            # Another Buy of this fan and track got there first (a double click, a
            # second tab): its transaction has committed by now.
            return _resume(_lock_live_purchase(fan, track))
        try:
            entry = credit_services.spend(
                user=fan,
                amount=price,
                reason="track_purchase",
                idempotency_key=f"purchase:{purchase.pk}:spend",
                memo=f"\u201c{track.title}\u201d by {track.creator.display_name}",
                post_release=False,
            )
        except InsufficientCredits:
            return _start_card_payment(purchase)
        return _complete_with_credits(purchase, entry)


# Every column but the id, in the model's order, from the model (never from input).
_INSERT_FIELDS = [f for f in Purchase._meta.concrete_fields if not f.primary_key]
_INSERT_SQL = (
    f"INSERT INTO purchases_purchase ({', '.join(f.column for f in _INSERT_FIELDS)})"  # noqa: S608
    f" VALUES ({', '.join(['%s'] * len(_INSERT_FIELDS))}) ON CONFLICT DO NOTHING RETURNING id"
)


def _insert_unless_live(purchase: Purchase) -> bool:
    """INSERT the purchase unless the fan has a live one for the track; True if made.

    ON CONFLICT DO NOTHING waits for a concurrent Buy's outcome, and inserts nothing
    once that one has committed: the partial unique index is the arbiter.
    """
    values = [
        field.get_db_prep_save(field.pre_save(purchase, add=True), connection)
        for field in _INSERT_FIELDS
    ]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL, values)
        row = cursor.fetchone()
    if row is None:
        return False
    purchase.pk = row[0]
    purchase._state.adding = False
    return True


def _lock_live_purchase(fan, track) -> Purchase:
    purchase = _locking().select_related("payment").filter(LIVE, fan=fan, track=track).first()
    if purchase is None:  # it stopped being live in between: let the fan press again
        raise InvalidTransition("That purchase changed just now; please try again.")
    return purchase


def _resume(purchase: Purchase) -> BuyResult:
    if purchase.status in (S.COMPLETED, S.DISPUTED):
        raise AlreadyOwned("This track is already in your collection.", purchase=purchase)
    if purchase.payment_method != PaymentMethod.CARD or purchase.payment is None:
        raise InvalidTransition(f"Purchase {purchase.pk} has no card payment to resume")
    if purchase.status == S.FAILED:  # the fan tries again with the same PaymentIntent
        purchase.failure_message = ""
        set_status(purchase, S.PENDING, extra_fields=("failure_message",))
    payment = purchase.payment
    return BuyResult(
        purchase,
        intent={"id": payment.stripe_payment_intent_id, "client_secret": payment.client_secret},
    )


def _complete_with_credits(purchase: Purchase, entry) -> BuyResult:
    split = postings.split_of(value_cents=entry.released_cents)
    purchase.ledger_entry = entry
    _store_split(purchase, split)
    purchase.completed_at = _now()
    set_status(purchase, S.COMPLETED, extra_fields=(*_SPLIT_FIELDS, "ledger_entry", "completed_at"))
    postings.paid_with_credits(purchase=purchase, entry=entry, cause_ref=entry.idempotency_key)
    _after_completion(purchase)
    return BuyResult(purchase, balance=entry.balance_after)


def _start_card_payment(purchase: Purchase) -> BuyResult:
    """Make the purchase's Payment and PaymentIntent in the purchase's transaction.

    Holding the transaction across Stripe's answer is deliberate: a concurrent Buy
    of the same track waits on the purchase and then finds its PaymentIntent, so
    there is never a second one. If Stripe cannot be reached the whole Buy rolls
    back. No webhook can outrun the commit: nobody can pay the intent before the
    fan has its client secret, which this response carries.
    """
    track = purchase.track
    payment, intent = payment_services.start_card_payment(
        user=purchase.fan,
        purpose=Purpose.TRACK_PURCHASE,
        amount_cents=purchase.amount_cents,
        description=f"SoundStudio: \u201c{track.title}\u201d by {track.creator.display_name}",
        metadata={"track_id": str(track.pk), "purchase_id": str(purchase.pk)},
        idempotency_key=f"purchase:{purchase.pk}:payment-intent",
    )
    purchase.payment_method = PaymentMethod.CARD
    purchase.payment = payment
    purchase.save(update_fields=["payment_method", "payment", "updated_at"])
    return BuyResult(
        purchase, intent={"id": intent["id"], "client_secret": intent.get("client_secret")}
    )


_SPLIT_FIELDS = ("value_cents", "card_fee_cents", "platform_fee_cents", "artist_earnings_cents")


def _store_split(purchase: Purchase, split: postings.Split) -> None:
    purchase.value_cents = split.value
    purchase.card_fee_cents = split.card_fee
    purchase.platform_fee_cents = split.platform_fee
    purchase.artist_earnings_cents = split.artist


def _after_completion(purchase: Purchase) -> None:
    _log("purchase completed", purchase)
    from purchases.tasks import send_receipt

    delay_on_commit(send_receipt, purchase.pk)


# --- Card completion, failure, refunds and disputes (from purchases.fulfilment) -----


def complete_card_purchase(*, payment, intent: dict, fee_cents: int | None, cause_ref: str):
    """The PaymentIntent succeeded with our amount and currency: complete, once."""
    purchase = _lock_purchase_of_payment(payment, intent)
    if purchase.status in (S.COMPLETED, S.DISPUTED, S.REFUNDED):
        return purchase
    _store_split(
        purchase, postings.split_of(value_cents=purchase.amount_cents, card_fee_cents=fee_cents)
    )
    purchase.failure_message = ""
    purchase.completed_at = _now()
    set_status(
        purchase, S.COMPLETED, extra_fields=(*_SPLIT_FIELDS, "failure_message", "completed_at")
    )
    postings.paid_by_card(purchase=purchase, intent_id=intent["id"], cause_ref=cause_ref)
    _after_completion(purchase)
    return purchase


def fail_card_purchase(*, payment, canceled: bool, cause_ref: str):
    """The card attempt failed (the fan may retry), or the intent was canceled, or
    Stripe's amount differed from ours (failed and flagged for admins)."""
    purchase = _lock_purchase_of_payment(payment)
    if purchase is None or purchase.status not in (S.PENDING, S.FAILED):
        return purchase  # a late failure of a purchase that completed changes nothing
    purchase.failure_message = (payment.failure_message or "The payment failed.")[:500]
    fields = ["failure_message"]
    if payment.flag == PurchaseFlag.AMOUNT_MISMATCH:
        purchase.flag = PurchaseFlag.AMOUNT_MISMATCH
        fields.append("flag")
        new_status = S.FAILED
    else:
        new_status = S.CANCELED if canceled else S.FAILED
    if purchase.status == new_status:
        purchase.save(update_fields=[*fields, "updated_at"])
    else:
        set_status(purchase, new_status, extra_fields=tuple(fields))
    _log(f"purchase {purchase.status}", purchase, flag=purchase.flag, cause_ref=cause_ref)
    return purchase


def apply_card_refund(
    *, payment, refund_id: str, amount_cents: int, refunded_total_cents: int, cause_ref: str
):
    """One Stripe refund of `amount_cents`: reverse its share; a full refund revokes."""
    purchase = _lock_purchase_of_payment(payment)
    if purchase is None or purchase.status not in (S.COMPLETED, S.DISPUTED, S.REFUNDED):
        raise InvalidTransition(f"Payment {payment.pk}: no completed purchase to refund")
    before = refunded_total_cents - amount_cents
    postings.card_reversal(
        purchase=purchase,
        key=f"books:refund:{refund_id}",
        event="track_purchase_refunded",
        from_total=before + purchase.disputed_cents,
        to_total=refunded_total_cents + purchase.disputed_cents,
        cause_ref=cause_ref,
    )
    purchase.refunded_cents = refunded_total_cents
    fields = ("refunded_cents",)
    if refunded_total_cents >= purchase.amount_cents and purchase.status != S.REFUNDED:
        purchase.refunded_at = _now()
        set_status(purchase, S.REFUNDED, extra_fields=(*fields, "refunded_at"))
    else:
        purchase.save(update_fields=[*fields, "updated_at"])
    _log("purchase refunded", purchase, refund_cents=amount_cents, cause_ref=cause_ref)
    return purchase


def open_dispute(*, payment, dispute: dict, cause_ref: str):
    """charge.dispute.created: suspend the fan's access and the artist's share."""
    purchase = _lock_purchase_of_payment(payment)
    if purchase is None or purchase.status != S.COMPLETED:
        return purchase  # disputed already, or nothing left to suspend
    left = purchase.amount_cents - purchase.refunded_cents
    held = min(dispute.get("amount") or left, left)
    postings.card_reversal(
        purchase=purchase,
        key=f"books:dispute:{dispute['id']}:opened",
        event="track_purchase_disputed",
        from_total=purchase.refunded_cents,
        to_total=purchase.refunded_cents + held,
        cause_ref=cause_ref,
    )
    purchase.disputed_cents = held
    purchase.stripe_dispute_id = dispute["id"]
    set_status(purchase, S.DISPUTED, extra_fields=("disputed_cents", "stripe_dispute_id"))
    _log("purchase disputed", purchase, dispute=dispute["id"], disputed_cents=held)
    return purchase


def close_dispute(*, payment, dispute: dict, won: bool, cause_ref: str):
    """charge.dispute.closed: undo the suspension. A dispute lost is then applied by
    payments as a refund of the disputed amount (`apply_card_refund`)."""
    purchase = _lock_purchase_of_payment(payment)
    if (
        purchase is None
        or purchase.status != S.DISPUTED
        or purchase.stripe_dispute_id != dispute["id"]
    ):
        return purchase
    postings.card_reversal(
        purchase=purchase,
        key=f"books:dispute:{dispute['id']}:closed",
        event="track_purchase_dispute_closed",
        from_total=purchase.refunded_cents + purchase.disputed_cents,
        to_total=purchase.refunded_cents,
        cause_ref=cause_ref,
    )
    purchase.disputed_cents = 0
    fields: tuple[str, ...] = ("disputed_cents",)
    if purchase.refunded_cents >= purchase.amount_cents:
        purchase.refunded_at = purchase.refunded_at or _now()
        set_status(purchase, S.REFUNDED, extra_fields=(*fields, "refunded_at"))
    else:
        set_status(purchase, S.COMPLETED, extra_fields=fields)
    _log("purchase dispute closed", purchase, dispute=dispute["id"], won=won)
    return purchase


# --- Staff refunds -------------------------------------------------------------------


def refund_purchase(*, purchase: Purchase, staff_user, reason: str) -> Purchase:
    """Refund a completed purchase in full (admin): revoke the download and reverse
    the artist's earnings; credits go back to the lots they came from, a card
    payment is refunded through Stripe.

    A card refund is applied when Stripe confirms it (at once for the usual
    synchronous answer, else by the charge.refunded webhook).
    """
    reason = reason.strip()
    if not reason:
        raise ValueError("A refund needs a reason.")
    if staff_user is None or not staff_user.is_staff:
        raise PermissionError("Only staff can refund purchases.")
    if purchase.payment_method == PaymentMethod.CREDITS:
        return _refund_credits(purchase.pk, staff_user=staff_user, reason=reason)
    purchase.refresh_from_db()
    if purchase.status != S.COMPLETED:
        raise InvalidTransition(f"Purchase {purchase.pk} is {purchase.status}: nothing to refund")
    # Not under the purchase's lock: payments locks the payment, then fulfilment the purchase.
    payment_services.request_refund(payment=purchase.payment, staff_user=staff_user, reason=reason)
    with transaction.atomic():
        purchase = lock_purchase(purchase.pk)
        purchase.refunded_by = staff_user
        purchase.refund_reason = reason
        purchase.save(update_fields=["refunded_by", "refund_reason", "updated_at"])
    return purchase


def _refund_credits(pk: int, *, staff_user, reason: str) -> Purchase:
    with transaction.atomic():
        purchase = lock_purchase(pk)
        if purchase.status != S.COMPLETED:
            raise InvalidTransition(f"Purchase {pk} is {purchase.status}: nothing to refund")
        entry = credit_services.refund(
            entry=purchase.ledger_entry,
            idempotency_key=f"purchase:{pk}:refund",
            memo=f"Refund of \u201c{purchase.track.title}\u201d",
            cause=Cause.STAFF,
            cause_ref=f"staff:{staff_user.pk}",
            post_return=False,
        )
        postings.credits_refunded(
            purchase=purchase,
            returned_cents=entry.returned_cents,
            entry=entry,
            staff_user=staff_user,
            reason=reason,
        )
        purchase.refunded_by = staff_user
        purchase.refund_reason = reason
        purchase.refunded_at = _now()
        set_status(
            purchase, S.REFUNDED, extra_fields=("refunded_by", "refund_reason", "refunded_at")
        )
        _log("purchase refunded", purchase, refund_credits=purchase.price_credits)
    return purchase


# --- Receipts and logs ---------------------------------------------------------------


def unsent_receipts(*, now: dt.datetime, sweep_after: dt.timedelta, sweep_until: dt.timedelta):
    """Completed purchases whose receipt task was lost (see notices.send_unsent)."""
    return list(
        Purchase.objects.filter(
            receipt_sent_at__isnull=True,
            completed_at__lte=now - sweep_after,
            completed_at__gt=now - sweep_until,
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


def send_receipt(*, purchase_id: int) -> bool:
    """E-mail a completed purchase's receipt, once; False when there is nothing to send."""
    from purchases import receipts

    with transaction.atomic():
        purchase = lock_purchase(purchase_id)
        if purchase.receipt_sent_at is not None or purchase.completed_at is None:
            return False
        receipts.send(purchase)
        purchase.receipt_sent_at = _now()
        purchase.save(update_fields=["receipt_sent_at", "updated_at"])
    return True


def _log(message: str, purchase: Purchase, **extra) -> None:
    """One JSON log line once the transaction commits: ids and amounts, no secrets."""
    payment = purchase.payment if purchase.payment_id else None
    fields = {
        "purchase_id": purchase.pk,
        "fan_id": purchase.fan_id,
        "track_id": purchase.track_id,
        "method": purchase.payment_method,
        "status": purchase.status,
        "price_credits": purchase.price_credits,
        "amount_cents": purchase.amount_cents,
        "value_cents": purchase.value_cents,
        "card_fee_cents": purchase.card_fee_cents,
        "platform_fee_cents": purchase.platform_fee_cents,
        "artist_earnings_cents": purchase.artist_earnings_cents,
        "refunded_cents": purchase.refunded_cents,
        "payment_intent_id": payment.stripe_payment_intent_id if payment else None,
        **extra,
    }
    transaction.on_commit(lambda: logger.info(message, extra=fields))
