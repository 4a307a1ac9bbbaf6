"""Webhook handlers for PaymentIntents and charges (registered in webhooks.registry)."""

from payments import services

HANDLED_PURPOSES = {"credit_package"}


def _ours(obj: dict) -> bool:
    return (obj.get("metadata") or {}).get("purpose") in HANDLED_PURPOSES


def payment_intent_succeeded(event) -> None:
    intent = event.data_object
    if _ours(intent):
        services.complete_from_intent(intent, cause_ref=event.stripe_event_id)


def payment_intent_payment_failed(event) -> None:
    intent = event.data_object
    if _ours(intent):
        services.fail_from_intent(intent, cause_ref=event.stripe_event_id)


def charge_refunded(event) -> None:
    charge = event.data_object
    if (
        _ours(charge)
        or services.Payment.objects.filter(
            stripe_payment_intent_id=charge.get("payment_intent")
        ).exists()
    ):
        services.refund_from_charge(charge, cause_ref=event.stripe_event_id)
