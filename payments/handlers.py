"""Webhook handlers for PaymentIntents, charges and disputes (webhooks.registry).

An object without a purpose of ours (another product on the same Stripe account)
is stored with its event and changes nothing.
"""

from payments import services
from payments.models import Payment
from payments.purposes import is_ours


def _ours(obj: dict) -> bool:
    return is_ours((obj.get("metadata") or {}).get("purpose"))


def payment_intent_succeeded(event) -> None:
    intent = event.data_object
    if _ours(intent):
        services.complete_from_intent(intent, cause_ref=event.stripe_event_id)


def payment_intent_failed(event) -> None:
    """payment_intent.payment_failed and payment_intent.canceled."""
    intent = event.data_object
    if _ours(intent):
        services.fail_from_intent(intent, cause_ref=event.stripe_event_id)


def charge_refunded(event) -> None:
    charge = event.data_object
    intent_id = charge.get("payment_intent")
    if _ours(charge) or Payment.objects.filter(stripe_payment_intent_id=intent_id).exists():
        services.refund_from_charge(charge, cause_ref=event.stripe_event_id)


def dispute_created(event) -> None:
    services.open_dispute(dispute=event.data_object, cause_ref=event.stripe_event_id)


def dispute_closed(event) -> None:
    services.close_dispute(dispute=event.data_object, cause_ref=event.stripe_event_id)
