"""The built-in test gateway's side of Stripe: objects, outcomes and signed events.

Test cards (shown on the test checkout page):
- 4242 4242 4242 4242 succeeds;
- 4000 0000 0000 0002 is declined;
- 4000 0000 0000 0119 fails with a processing error: the buyer should try again.

Every outcome is delivered as a signed Stripe-format event to our own
/webhooks/stripe/ endpoint by a Celery task, so the production code path runs.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from payments.gateway import GatewayError
from payments.models import TestModeIntent
from webhooks.secrets import webhook_secrets
from webhooks.signature import sign

API_VERSION = "2026-10-28.endive"  # the stripe SDK's pinned API version


@dataclass(frozen=True)
class TestCard:
    number: str
    label: str
    decline_code: str | None = None
    message: str = ""


CARDS = [
    TestCard("4242424242424242", "Visa ending 4242: succeeds"),
    TestCard(
        "4000000000000002",
        "Visa ending 0002: declined",
        "card_declined",
        "Your card was declined.",
    ),
    TestCard(
        "4000000000000119",
        "Visa ending 0119: processing error, try again",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
]
CARDS_BY_NUMBER = {card.number: card for card in CARDS}


def intent_object(intent: TestModeIntent) -> dict:
    return {
        "id": intent.id,
        "object": "payment_intent",
        "amount": intent.amount,
        "amount_received": intent.amount if intent.status == "succeeded" else 0,
        "currency": intent.currency,
        "status": intent.status,
        "client_secret": intent.client_secret,
        "metadata": intent.metadata,
        "latest_charge": intent.charge_id or None,
        "last_payment_error": intent.last_error,
        "created": int(intent.created.timestamp()),
        "livemode": False,
    }


def card_fee(amount: int) -> int:
    """Stripe's standard US card fee: 2.9% (rounded half up) + 30 cents."""
    return (amount * 29 + 500) // 1000 + 30


def _refund_objects(intent: TestModeIntent) -> list[dict]:
    return [
        {
            "id": r["id"],
            "object": "refund",
            "amount": r["amount"],
            "charge": intent.charge_id,
            "payment_intent": intent.id,
            "currency": intent.currency,
            "created": r.get("created"),
            "status": "succeeded",
        }
        for r in intent.refunds
    ]


def list_refunds(intent_id: str) -> list[dict]:
    intent = TestModeIntent.objects.filter(pk=intent_id).first()
    if intent is None:
        raise GatewayError(f"No such payment_intent: {intent_id}")
    return _refund_objects(intent)


def charge_object(intent: TestModeIntent) -> dict:
    return {
        "id": intent.charge_id,
        "object": "charge",
        "amount": intent.amount,
        "amount_captured": intent.amount,
        "amount_refunded": intent.amount_refunded,
        "currency": intent.currency,
        "payment_intent": intent.id,
        "metadata": intent.metadata,
        "paid": True,
        "refunded": intent.amount_refunded >= intent.amount,
        "refunds": {"object": "list", "data": _refund_objects(intent)},
        "balance_transaction": {"object": "balance_transaction", "fee": card_fee(intent.amount)},
        "created": int(intent.created.timestamp()),
        "status": "succeeded",
        "livemode": False,
    }


def event(event_type: str, obj: dict) -> dict:
    return {
        "id": f"evt_test_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "type": event_type,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj},
    }


def emit(event_type: str, obj: dict) -> dict:
    """Queue delivery of a signed event to our webhook once the transaction commits."""
    payload = event(event_type, obj)
    body = json.dumps(payload)

    def deliver():
        from payments.tasks import deliver_test_event

        deliver_test_event.delay(body)

    transaction.on_commit(deliver)
    return payload


def post_event(body: str) -> int:
    """POST one signed event to our own endpoint, as Stripe would; return the status."""
    header = sign(body.encode(), webhook_secrets()[0])
    request = urllib.request.Request(  # noqa: S310 - SITE_URL is our own http(s) URL
        settings.SITE_URL.rstrip("/") + "/webhooks/stripe/",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own URL
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def confirm(intent_id: str, card_number: str) -> TestModeIntent:
    """Pay a test intent with one of the test cards and emit the resulting event."""
    card = CARDS_BY_NUMBER.get(card_number.replace(" ", ""))
    with transaction.atomic():
        intent = TestModeIntent.objects.select_for_update().get(pk=intent_id)
        if intent.status == "succeeded":
            return intent
        if intent.status == "canceled":
            raise ValueError("This payment was canceled; start again from the page you came from.")
        if card is None:
            raise ValueError("Use one of the test cards listed on this page.")
        if card.decline_code:
            intent.status = "requires_payment_method"
            # As Stripe's: each try is a charge of its own, a decline is card_declined.
            declined = card.decline_code == "card_declined"
            intent.last_error = {
                "type": "card_error",
                "code": card.decline_code,
                "message": card.message,
                "charge": f"ch_test_{secrets.token_hex(12)}",
                **({"decline_code": "generic_decline"} if declined else {}),
            }
            intent.save(update_fields=["status", "last_error"])
            emit("payment_intent.payment_failed", intent_object(intent))
        else:
            intent.status = "succeeded"
            intent.last_error = None
            intent.charge_id = f"ch_test_{secrets.token_hex(12)}"
            intent.save(update_fields=["status", "last_error", "charge_id"])
            emit("payment_intent.succeeded", intent_object(intent))
    return intent


def intents_created(created_gte: int, created_lt: int):
    """The test intents created in [created_gte, created_lt) (Unix times), one query."""
    import datetime as dt

    return TestModeIntent.objects.filter(
        created__gte=dt.datetime.fromtimestamp(created_gte, tz=dt.UTC),
        created__lt=dt.datetime.fromtimestamp(created_lt, tz=dt.UTC),
    ).order_by("created")


def cancel(intent_id: str) -> TestModeIntent:
    """Cancel an unpaid test intent (Stripe refuses to cancel a succeeded one)."""
    with transaction.atomic():
        intent = TestModeIntent.objects.select_for_update().filter(pk=intent_id).first()
        if intent is None:
            raise GatewayError(f"No such payment_intent: {intent_id}")
        if intent.status == "succeeded":
            raise GatewayError("This PaymentIntent has succeeded and cannot be canceled.")
        if intent.status != "canceled":
            intent.status = "canceled"
            intent.save(update_fields=["status"])
            emit("payment_intent.canceled", intent_object(intent))
    return intent


def refund(intent_id: str, *, amount: int | None = None, idempotency_key: str) -> dict:
    """Refund `amount` (None: all that is left) of a succeeded intent, as Stripe does:
    a retried request with the same key returns the first refund."""
    with transaction.atomic():
        intent = TestModeIntent.objects.select_for_update().filter(pk=intent_id).first()
        if intent is None or intent.status != "succeeded":
            raise GatewayError("This PaymentIntent has no successful charge to refund.")
        earlier = next((r for r in intent.refunds if r.get("key") == idempotency_key), None)
        if earlier is None:
            left = intent.amount - intent.amount_refunded
            amount = left if amount is None else amount
            if not 0 < amount <= left:
                raise GatewayError(f"Refund amount must be between 1 and {left} cents.")
            earlier = {
                "id": f"re_test_{secrets.token_hex(12)}",
                "amount": amount,
                "key": idempotency_key,
                "created": int(time.time()),
            }
            intent.refunds = [*intent.refunds, earlier]
            intent.amount_refunded += amount
            intent.save(update_fields=["refunds", "amount_refunded"])
            emit("charge.refunded", charge_object(intent))
    return next(r for r in _refund_objects(intent) if r["id"] == earlier["id"])


# --- Subscriptions (Checkout in subscription mode) -----------------------------------

ESSENTIAL_AMOUNT_CENTS = 500


def _add_month(moment):
    """The same time one calendar month later (31 Jan -> 28/29 Feb)."""
    import calendar

    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def create_checkout(*, user_id: int, idempotency_key: str) -> dict:
    from django.urls import reverse

    from payments.models import TestModeCheckout

    checkout, _ = TestModeCheckout.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={"id": f"cs_test_{secrets.token_hex(12)}", "metadata": {"user_id": str(user_id)}},
    )
    return {
        "id": checkout.id,
        "object": "checkout.session",
        "mode": "subscription",
        "status": checkout.status,
        "url": reverse("test_subscription_checkout", kwargs={"session_id": checkout.id}),
        "metadata": checkout.metadata,
    }


def get_subscription(subscription_id: str):
    from payments.models import TestModeSubscription

    subscription = TestModeSubscription.objects.filter(pk=subscription_id).first()
    if subscription is None:
        raise GatewayError(f"No such subscription: {subscription_id}")
    return subscription


def subscription_object(sub) -> dict:
    start, end = int(sub.current_period_start.timestamp()), int(sub.current_period_end.timestamp())
    return {
        "id": sub.id,
        "object": "subscription",
        "customer": sub.customer,
        "status": sub.status,
        "metadata": sub.metadata,
        "cancel_at_period_end": sub.cancel_at_period_end,
        "canceled_at": int(sub.canceled_at.timestamp()) if sub.canceled_at else None,
        "items": {
            "object": "list",
            "data": [
                {
                    "object": "subscription_item",
                    "current_period_start": start,
                    "current_period_end": end,
                    "price": {"id": "price_test_essential", "unit_amount": ESSENTIAL_AMOUNT_CENTS},
                }
            ],
        },
        "livemode": False,
    }


def invoice_object(sub, *, billing_reason: str, paid: bool) -> dict:
    return {
        "id": f"in_test_{secrets.token_hex(12)}",
        "object": "invoice",
        "customer": sub.customer,
        "subscription": sub.id,
        "parent": {"subscription_details": {"subscription": sub.id, "metadata": sub.metadata}},
        "billing_reason": billing_reason,
        "status": "paid" if paid else "open",
        "amount_paid": ESSENTIAL_AMOUNT_CENTS if paid else 0,
        "currency": "usd",
        "livemode": False,
    }


def complete_checkout(session_id: str, card_number: str):
    """Pay a test Checkout Session: on success create the subscription and emit
    checkout.session.completed, customer.subscription.created and invoice.paid."""
    from django.utils import timezone

    from payments.models import TestModeCheckout, TestModeSubscription

    card = CARDS_BY_NUMBER.get(card_number.replace(" ", ""))
    if card is None:
        raise ValueError("Use one of the test cards listed on this page.")
    with transaction.atomic():
        checkout = TestModeCheckout.objects.select_for_update().get(pk=session_id)
        if checkout.status == "complete":
            return checkout
        if card.decline_code:
            raise ValueError(card.message)
        now = timezone.now()
        sub = TestModeSubscription.objects.create(
            id=f"sub_test_{secrets.token_hex(12)}",
            customer=f"cus_test_{secrets.token_hex(8)}",
            metadata=checkout.metadata,
            current_period_start=now,
            current_period_end=_add_month(now),
        )
        checkout.status = "complete"
        checkout.subscription_id = sub.id
        checkout.save(update_fields=["status", "subscription_id"])
        emit(
            "checkout.session.completed",
            {
                "id": checkout.id,
                "object": "checkout.session",
                "mode": "subscription",
                "status": "complete",
                "payment_status": "paid",
                "subscription": sub.id,
                "customer": sub.customer,
                "client_reference_id": checkout.metadata.get("user_id"),
                "metadata": checkout.metadata,
            },
        )
        emit("customer.subscription.created", subscription_object(sub))
        emit("invoice.paid", invoice_object(sub, billing_reason="subscription_create", paid=True))
    return checkout


def set_cancel_at_period_end(subscription_id: str, *, cancel: bool) -> dict:
    from payments.models import TestModeSubscription

    with transaction.atomic():
        sub = TestModeSubscription.objects.select_for_update().filter(pk=subscription_id).first()
        if sub is None or sub.status == "canceled":
            raise GatewayError("This subscription can no longer be changed.")
        if sub.cancel_at_period_end != cancel:
            sub.cancel_at_period_end = cancel
            sub.save(update_fields=["cancel_at_period_end"])
            emit("customer.subscription.updated", subscription_object(sub))
    return subscription_object(sub)


def cancel_subscription(subscription_id: str) -> dict:
    """Cancel a test subscription at once (Stripe's DELETE /v1/subscriptions/:id)."""
    from django.utils import timezone

    from payments.models import TestModeSubscription

    with transaction.atomic():
        sub = TestModeSubscription.objects.select_for_update().filter(pk=subscription_id).first()
        if sub is None:
            raise GatewayError(f"No such subscription: {subscription_id}")
        if sub.status != "canceled":
            sub.status = "canceled"
            sub.canceled_at = timezone.now()
            sub.save(update_fields=["status", "canceled_at"])
            emit("customer.subscription.deleted", subscription_object(sub))
    return subscription_object(sub)
