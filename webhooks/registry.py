"""Which function applies which Stripe event type. Unknown types are stored and ignored."""

from collections.abc import Callable

from django.utils.module_loading import import_string

HANDLERS: dict[str, str] = {
    "payment_intent.succeeded": "payments.handlers.payment_intent_succeeded",
    "payment_intent.payment_failed": "payments.handlers.payment_intent_failed",
    "payment_intent.canceled": "payments.handlers.payment_intent_failed",
    "charge.refunded": "payments.handlers.charge_refunded",
    "charge.dispute.created": "payments.handlers.dispute_created",
    "charge.dispute.closed": "payments.handlers.dispute_closed",
    "checkout.session.completed": "subscriptions.handlers.checkout_session_completed",
    "customer.subscription.created": "subscriptions.handlers.subscription_changed",
    "customer.subscription.updated": "subscriptions.handlers.subscription_changed",
    "customer.subscription.deleted": "subscriptions.handlers.subscription_changed",
    "invoice.paid": "subscriptions.handlers.invoice_paid",
    "invoice.payment_failed": "subscriptions.handlers.invoice_changed",
}


def handler_for(event_type: str) -> Callable | None:
    path = HANDLERS.get(event_type)
    return import_string(path) if path else None
