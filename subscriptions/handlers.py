"""Webhook handlers for the Essential subscription (registered in webhooks.registry).

Allowance periods follow the calendar month, so no invoice ever resets them: a
renewal (billing_reason subscription_cycle) or a proration invoice only brings the
subscription's state up to date, fetched from Stripe. A paid invoice is also money
in: one Essential payment row and its posting.

A subscription is ours when we hold its row or its metadata names our user; events
about anyone else's (another product on the same Stripe account) change nothing.
"""

from notices import services as notices
from notices.models import NoticeKind
from payments import services as payment_services
from subscriptions import services
from subscriptions.models import Subscription, SubscriptionStatus


def _version(event) -> int:
    return int(event.payload.get("created") or 0)


def _owner(subscription_id: str | None, metadata: dict | None) -> int | None:
    """The id of our user a Stripe subscription belongs to, or None if not ours."""
    if not subscription_id:
        return None
    known = (
        Subscription.objects.filter(stripe_subscription_id=subscription_id)
        .values_list("user_id", flat=True)
        .first()
    )
    if known is not None:
        return known
    user_id = str((metadata or {}).get("user_id") or "")
    return int(user_id) if user_id.isdigit() else None


def checkout_session_completed(event) -> None:
    session = event.data_object
    if session.get("mode") != "subscription" or not session.get("subscription"):
        return
    if _owner(session["subscription"], session.get("metadata")) is None:
        return
    services.sync_from_stripe(session["subscription"], version=_version(event))


def subscription_changed(event) -> None:
    """customer.subscription.created / .updated / .deleted carry the full state."""
    obj = event.data_object
    if _owner(obj.get("id"), obj.get("metadata")) is None:
        return
    subscription = services.apply_stripe_subscription(
        obj, version=_version(event), cause_ref=event.stripe_event_id
    )
    if subscription.status == SubscriptionStatus.CANCELED:
        notices.claim(
            user_id=subscription.user_id,
            kind=NoticeKind.ESSENTIAL_ENDED,
            key=f"essential_ended:{subscription.pk}",
            subscription_id=subscription.pk,
        )


def _is_renewal(invoice: dict) -> bool:
    return invoice.get("billing_reason") == "subscription_cycle"


def _invoice_subscription(invoice: dict) -> tuple[str | None, dict]:
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription_id = invoice.get("subscription") or parent.get("subscription")
    metadata = parent.get("metadata") or invoice.get("subscription_details", {}).get("metadata")
    return subscription_id, metadata or {}


def invoice_changed(event) -> None:
    """invoice.payment_failed: the subscription's status moves on; a renewal that
    failed is a notice (once per invoice, however often Stripe retries it)."""
    invoice = event.data_object
    subscription_id, metadata = _invoice_subscription(invoice)
    user_id = _owner(subscription_id, metadata)
    if user_id is None:
        return
    subscription = services.sync_from_stripe(subscription_id, version=_version(event))
    if _is_renewal(invoice):
        notices.claim(
            user_id=user_id,
            kind=NoticeKind.ESSENTIAL_RENEWAL_FAILED,
            key=f"essential_renewal_failed:{invoice['id']}",
            subscription_id=subscription.pk,
        )


def invoice_paid(event) -> None:
    """invoice.paid: the state moves on, and the invoice is an Essential payment."""
    invoice = event.data_object
    subscription_id, metadata = _invoice_subscription(invoice)
    user_id = _owner(subscription_id, metadata)
    if user_id is None:
        return
    subscription = services.sync_from_stripe(subscription_id, version=_version(event))
    payment_services.record_invoice_payment(
        invoice=invoice, user_id=user_id, cause_ref=event.stripe_event_id
    )
    if _is_renewal(invoice) and (invoice.get("amount_paid") or 0) > 0:
        notices.claim(
            user_id=user_id,
            kind=NoticeKind.ESSENTIAL_RENEWED,
            key=f"essential_renewed:{invoice['id']}",
            subscription_id=subscription.pk,
        )
