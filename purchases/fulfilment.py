"""Track purchases paid by card: what a payment of purpose `track_purchase` delivers.

Registered in payments.purposes.FULFILMENTS. Payments calls each method inside the
transaction that holds the payment's row lock (the first lock of the one order), and
only calls `fulfil` once Stripe's amount and currency match ours. The rules and the
postings live in purchases.services and purchases.postings.
"""

from __future__ import annotations

from purchases import services


class TrackPurchaseFulfilment:
    def payment_fields(self, metadata: dict) -> dict:
        return {}  # the purchase is found (or made) from the metadata at fulfilment

    def fulfil(self, *, payment, intent: dict, fee_cents: int | None, cause_ref: str) -> None:
        services.complete_card_purchase(
            payment=payment, intent=intent, fee_cents=fee_cents, cause_ref=cause_ref
        )

    def failed(self, *, payment, canceled: bool, cause_ref: str) -> None:
        services.fail_card_purchase(payment=payment, canceled=canceled, cause_ref=cause_ref)

    def refunded(
        self,
        *,
        payment,
        refund_id: str,
        amount_cents: int,
        refunded_total_cents: int,
        cause_ref: str,
    ) -> None:
        services.apply_card_refund(
            payment=payment,
            refund_id=refund_id,
            amount_cents=amount_cents,
            refunded_total_cents=refunded_total_cents,
            cause_ref=cause_ref,
        )

    def dispute_opened(self, *, payment, dispute: dict, cause_ref: str) -> None:
        services.open_dispute(payment=payment, dispute=dispute, cause_ref=cause_ref)

    def dispute_closed(self, *, payment, dispute: dict, won: bool, cause_ref: str) -> None:
        services.close_dispute(payment=payment, dispute=dispute, won=won, cause_ref=cause_ref)

    def after_payment_url(self, payment) -> str:
        """Where the test card page sends the fan once paid: the collection, confirming."""
        purchase = getattr(payment, "purchase", None)
        return f"/collection/?purchase={purchase.pk}" if purchase else "/collection/"

    def cancel_url(self, payment) -> str:
        purchase = getattr(payment, "purchase", None)
        return purchase.track.get_absolute_url() if purchase else "/collection/"

    def checkout_summary(self, payment) -> str:
        purchase = getattr(payment, "purchase", None)
        if purchase is None:
            return "A track"
        track = purchase.track
        return f"\u201c{track.title}\u201d by {track.creator.display_name}"
