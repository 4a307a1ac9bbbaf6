"""Events about another product on the same Stripe account: stored, answered 2xx,
and nothing of ours changes (a 500 would make Stripe retry them for days)."""

import secrets
import time

import pytest

from books.models import JournalTransaction
from credits.models import LedgerEntry
from payments.models import Payment
from purchases.models import Purchase
from subscriptions.models import Subscription
from tests.factories import UserFactory
from tests.purchases_helpers import published_track
from tests.stripe_events import deliver
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

API_VERSION = "2026-10-28.endive"


def _id(prefix):
    return f"{prefix}_{secrets.token_hex(8)}"


def event(kind, obj):
    return {
        "id": _id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "type": kind,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": _id("req"), "idempotency_key": None},
        "data": {"object": obj},
    }


def foreign_objects():
    """One object of each kind, in Stripe's current shapes, with someone else's metadata."""
    intent, charge, sub = _id("pi"), _id("ch"), _id("sub")
    metadata = {"order_id": "A-1001", "shop": "another-product"}
    payment_intent = {
        "id": intent,
        "object": "payment_intent",
        "amount": 4200,
        "amount_received": 4200,
        "currency": "usd",
        "status": "succeeded",
        "metadata": metadata,
        "latest_charge": charge,
        "last_payment_error": None,
        "livemode": False,
    }
    charge_obj = {
        "id": charge,
        "object": "charge",
        "amount": 4200,
        "amount_captured": 4200,
        "amount_refunded": 4200,
        "currency": "usd",
        "payment_intent": intent,
        "metadata": metadata,
        "paid": True,
        "refunded": True,
        "status": "succeeded",
        "livemode": False,
    }
    dispute = {
        "id": _id("dp"),
        "object": "dispute",
        "amount": 4200,
        "currency": "usd",
        "charge": charge,
        "payment_intent": intent,
        "reason": "fraudulent",
        "status": "needs_response",
        "metadata": {},
        "livemode": False,
    }
    subscription = {
        "id": sub,
        "object": "subscription",
        "customer": _id("cus"),
        "status": "active",
        "metadata": metadata,
        "cancel_at_period_end": False,
        "items": {
            "object": "list",
            "data": [
                {
                    "object": "subscription_item",
                    "current_period_start": int(time.time()),
                    "current_period_end": int(time.time()) + 30 * 86400,
                    "price": {"id": _id("price"), "unit_amount": 4200},
                }
            ],
        },
        "livemode": False,
    }
    invoice = {
        "id": _id("in"),
        "object": "invoice",
        "customer": subscription["customer"],
        "amount_paid": 4200,
        "currency": "usd",
        "status": "paid",
        "billing_reason": "subscription_cycle",
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"subscription": sub, "metadata": metadata},
        },
        "livemode": False,
    }
    session = {
        "id": _id("cs"),
        "object": "checkout.session",
        "mode": "subscription",
        "status": "complete",
        "subscription": sub,
        "metadata": metadata,
        "livemode": False,
    }
    return [
        ("payment_intent.succeeded", payment_intent),
        ("payment_intent.payment_failed", {**payment_intent, "status": "requires_payment_method"}),
        ("payment_intent.canceled", {**payment_intent, "status": "canceled"}),
        ("charge.succeeded", {**charge_obj, "amount_refunded": 0, "refunded": False}),
        ("charge.refunded", charge_obj),
        ("charge.dispute.created", dispute),
        ("charge.dispute.closed", {**dispute, "status": "lost"}),
        ("checkout.session.completed", session),
        ("customer.subscription.created", subscription),
        ("customer.subscription.updated", {**subscription, "status": "past_due"}),
        ("customer.subscription.deleted", {**subscription, "status": "canceled"}),
        ("invoice.paid", invoice),
        ("invoice.payment_failed", {**invoice, "status": "open", "amount_paid": 0}),
    ]


def counts():
    return {
        model.__name__: model.objects.count()
        for model in (Payment, Purchase, Subscription, LedgerEntry, JournalTransaction)
    }


def test_events_about_objects_that_are_not_ours_are_stored_answered_and_change_nothing(client):
    fan = UserFactory()
    client.force_login(fan)
    client.post(f"/api/tracks/{published_track(UserFactory()).pk}/purchase")  # some state of ours
    before = counts()

    for kind, obj in foreign_objects():
        payload = event(kind, obj)
        response = deliver(client, payload)
        assert response.status_code == 200, (kind, response.content)
        stored = WebhookEvent.objects.get(stripe_event_id=payload["id"])
        assert stored.status in ("processed", "ignored"), (kind, stored.last_error)

    assert counts() == before
