"""Credit packages paid by card: what a payment of purpose `credit_package` delivers.

Registered in payments.purposes. Postings (debit positive, credit negative):

| event                 | lines                                                        |
|-----------------------|--------------------------------------------------------------|
| package paid          | cash +A, deferred_revenue -A                                 |
| package refund of R   | deferred_revenue +V, refunds +(R - V), cash -R               |
| ... the last refund   | and the fee Stripe keeps: refunds +F, processor_fees -F     |

where V is the cost the refund's void released from the package's unused credits.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from books import money
from books import services as books
from books.models import AccountCode, JournalCause
from credits import services as credit_services
from credits.models import Cause, CreditLot, CreditPackage, LotSource
from notices import services as notices


def _now() -> dt.datetime:
    return timezone.now()


def _voided_so_far(lot_ids: list[int], key_prefix: str) -> int:
    """Credits the refunds of one payment have voided so far (by their void entries)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(-SUM(l.amount), 0) FROM credits_ledger_entry_lot l"
            " JOIN credits_ledger_entry e ON e.id = l.entry_id"
            " WHERE l.lot_id = ANY(%s) AND e.kind = 'void' AND starts_with(e.idempotency_key, %s)",
            [lot_ids, key_prefix],
        )
        return int(cursor.fetchone()[0])


def kept_fee(payment, refunded_total_cents: int) -> int:
    """The card fee Stripe keeps once a payment is refunded in full: a cost of the
    refund (DESIGN.md: "what cannot be recovered ... goes to refunds"), moved there
    from processor fees by the refund that completes it."""
    if refunded_total_cents >= payment.amount_cents and payment.fee_cents:
        return payment.fee_cents
    return 0


class PackageFulfilment:
    def payment_fields(self, metadata: dict) -> dict:
        return {"package": CreditPackage.objects.get(slug=metadata["package"])}

    def fulfil(self, *, payment, intent: dict, fee_cents: int | None, cause_ref: str) -> None:
        package = payment.package
        now = _now()
        expires_at = (
            now + dt.timedelta(days=package.expires_after_days)
            if package.expires_after_days is not None
            else None
        )
        paid = payment.amount_cents  # checked against Stripe's amount received
        payment.lot = credit_services.grant(
            user=payment.user,
            amount=package.credits,
            source=LotSource.PACKAGE,
            idempotency_key=f"grant:{intent['id']}",
            expires_at=expires_at,
            package=package,
            cost_cents=paid,
            cause=Cause.STRIPE,
            cause_ref=cause_ref,
            memo=f"{package.name} package",
        )
        books.post(
            key=f"books:paid:{intent['id']}",
            event="package_paid",
            lines=[(AccountCode.CASH, paid), (AccountCode.DEFERRED_REVENUE, -paid)],
            cause=JournalCause.STRIPE,
            cause_ref=cause_ref,
            memo=f"{package.name} package",
            payment=payment,
        )
        notices.claim_receipt(payment=payment)

    def failed(self, *, payment, canceled: bool, cause_ref: str) -> None:
        pass  # nothing was granted before the payment succeeded

    def refunded(
        self,
        *,
        payment,
        refund_id: str,
        amount_cents: int,
        refunded_total_cents: int,
        cause_ref: str,
    ) -> None:
        """Void the refund's share of the package's unused credits and post it.

        After refunds totalling T of the amount A, ceil(credits x T / A) of the
        package's credits are void in all (never more than are unused): each refund
        voids what that adds. Credits given back after a failed generation came from
        the package's lot and are voided with it.
        """
        lot: CreditLot | None = payment.lot
        released = 0
        if lot is not None:
            # Lock order: the payment (held by our caller), then the wallet, then lots.
            # Under the wallet lock no give-back can add to the family after we read it.
            credit_services.lock_wallet(user_id=lot.user_id)
            family = credit_services.lot_family(lot)
            key_prefix = f"void:refund:{payment.stripe_payment_intent_id}:"
            target = money.ceil_share(lot.amount, refunded_total_cents, payment.amount_cents)
            wanted = min(target, lot.amount) - _voided_so_far([x.pk for x in family], key_prefix)
            if wanted > 0:
                entry = credit_services.void_credits(
                    lots=family,
                    amount=wanted,
                    idempotency_key=f"{key_prefix}{refund_id}",
                    reason="Card payment refunded",
                    cause=Cause.STRIPE,
                    cause_ref=cause_ref,
                    post_release=False,
                )
                if entry is not None:
                    released = entry.released_cents
            voided = _voided_so_far([x.pk for x in family], key_prefix)
            payment.refund_shortfall_credits = max(0, min(target, lot.amount) - voided)
        fee_kept = kept_fee(payment, refunded_total_cents)
        books.post(
            key=f"books:refund:{refund_id}",
            event="package_refunded",
            lines=[
                (AccountCode.DEFERRED_REVENUE, released),
                (AccountCode.REFUNDS, amount_cents - released + fee_kept),
                (AccountCode.PROCESSOR_FEES, -fee_kept),
                (AccountCode.CASH, -amount_cents),
            ],
            cause=JournalCause.STRIPE,
            cause_ref=cause_ref,
            memo=f"Refund {refund_id}",
            payment=payment,
        )

    def dispute_opened(self, *, payment, dispute: dict, cause_ref: str) -> None:
        pass  # the credits stay usable; a lost dispute is applied as a refund

    def dispute_closed(self, *, payment, dispute: dict, won: bool, cause_ref: str) -> None:
        pass

    def after_payment_url(self, payment) -> str:
        return f"/credits/?payment={payment.stripe_payment_intent_id}"

    def cancel_url(self, payment) -> str:
        return "/credits/"

    def checkout_summary(self, payment) -> str:
        package = payment.package
        return f"{package.name} package: {package.credits} credits"
