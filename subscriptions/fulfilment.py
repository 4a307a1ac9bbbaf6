"""Essential invoices: what a payment of purpose `essential` books.

Registered in payments.purposes. The subscription's state itself follows Stripe's
subscription events (subscriptions.services); an invoice paid is money in:

| event              | lines                                       |
|--------------------|---------------------------------------------|
| invoice paid (A)   | cash +A, revenue_subscriptions -A           |
| refund of R        | refunds +R, cash -R                         |
| ... the last one   | and the kept fee: refunds +F, fees -F       |
"""

from __future__ import annotations

from books import services as books
from books.models import AccountCode, JournalCause
from credits.fulfilment import kept_fee
from notices import services as notices


class EssentialFulfilment:
    def payment_fields(self, metadata: dict) -> dict:
        return {}

    def fulfil(self, *, payment, intent: dict, fee_cents: int | None, cause_ref: str) -> None:
        books.post(
            key=f"books:paid:{intent['id']}",
            event="essential_paid",
            lines=[
                (AccountCode.CASH, payment.amount_cents),
                (AccountCode.REVENUE_SUBSCRIPTIONS, -payment.amount_cents),
            ],
            cause=JournalCause.STRIPE,
            cause_ref=cause_ref,
            memo="Essential subscription",
            payment=payment,
        )
        notices.claim_receipt(payment=payment)

    def failed(self, *, payment, canceled: bool, cause_ref: str) -> None:
        pass

    def refunded(
        self,
        *,
        payment,
        refund_id: str,
        amount_cents: int,
        refunded_total_cents: int,
        cause_ref: str,
    ) -> None:
        fee_kept = kept_fee(payment, refunded_total_cents)
        books.post(
            key=f"books:refund:{refund_id}",
            event="essential_refunded",
            lines=[
                (AccountCode.REFUNDS, amount_cents + fee_kept),
                (AccountCode.PROCESSOR_FEES, -fee_kept),
                (AccountCode.CASH, -amount_cents),
            ],
            cause=JournalCause.STRIPE,
            cause_ref=cause_ref,
            memo=f"Refund {refund_id}",
            payment=payment,
        )

    def dispute_opened(self, *, payment, dispute: dict, cause_ref: str) -> None:
        pass

    def dispute_closed(self, *, payment, dispute: dict, won: bool, cause_ref: str) -> None:
        pass

    def after_payment_url(self, payment) -> str:
        return "/subscribe/"

    def cancel_url(self, payment) -> str:
        return "/subscribe/"

    def checkout_summary(self, payment) -> str:
        return "Essential: 5 track generations a month"
