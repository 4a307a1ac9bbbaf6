"""Webhook handlers for the Essential subscription (registered in webhooks.registry).

Allowance periods follow the calendar month, so no invoice ever resets them: a
renewal (billing_reason subscription_cycle) or a proration invoice only brings the
subscription's state up to date, fetched from Stripe.
"""

from subscriptions import services


def _version(event) -> int:
    return int(event.payload.get("created") or 0)


def checkout_session_completed(event) -> None:
    session = event.data_object
    if session.get("mode") != "subscription" or not session.get("subscription"):
        return
    services.sync_from_stripe(session["subscription"], version=_version(event))


def subscription_changed(event) -> None:
    """customer.subscription.created / .updated / .deleted carry the full state."""
    services.apply_stripe_subscription(
        event.data_object, version=_version(event), cause_ref=event.stripe_event_id
    )


def _invoice_subscription(invoice: dict) -> str | None:
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    return invoice.get("subscription") or parent.get("subscription")


def invoice_changed(event) -> None:
    """invoice.paid / invoice.payment_failed: the subscription's status moves on."""
    subscription_id = _invoice_subscription(event.data_object)
    if subscription_id:
        services.sync_from_stripe(subscription_id, version=_version(event))
