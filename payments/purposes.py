"""Which app fulfils a payment of which purpose: the payments' own registry, like
webhooks.registry maps event types to handlers. Adding a purpose adds an entry here.

A fulfilment is a class (instantiated with no arguments) with these methods, each
called inside the transaction that holds the payment's row lock, each idempotent:

- ``payment_fields(metadata) -> dict``: extra Payment fields for a payment that must
  be made from Stripe's metadata (an event outran our own row);
- ``fulfil(*, payment, intent, fee_cents, cause_ref)``: deliver what was bought and
  post the money in, once the amount and currency were checked against ours;
- ``failed(*, payment, canceled, cause_ref)``: the attempt failed (the buyer may try
  again) or the payment was canceled;
- ``refunded(*, payment, refund_id, amount_cents, refunded_total_cents, cause_ref)``:
  once per Stripe refund id; posts the reversal, cash included;
- ``dispute_opened(*, payment, dispute, cause_ref)`` and
  ``dispute_closed(*, payment, dispute, won, cause_ref)``;
- ``after_payment_url(payment)``, ``cancel_url(payment)`` and
  ``checkout_summary(payment)``: for the test checkout page, where "paid" and
  "cancel" lead and what is being paid for.
"""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import import_string

from payments.models import Purpose

FULFILMENTS: dict[str, str] = {
    Purpose.CREDIT_PACKAGE: "credits.fulfilment.PackageFulfilment",
    Purpose.ESSENTIAL: "subscriptions.fulfilment.EssentialFulfilment",
    Purpose.TRACK_PURCHASE: "purchases.fulfilment.TrackPurchaseFulfilment",
}


class UnknownPurpose(LookupError):
    pass


def is_ours(purpose: str | None) -> bool:
    return purpose in FULFILMENTS


@cache
def fulfilment_for(purpose: str):
    path = FULFILMENTS.get(purpose)
    if path is None:
        raise UnknownPurpose(f"No fulfilment for payments of purpose {purpose!r}")
    return import_string(path)()
