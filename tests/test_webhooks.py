import json
import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from credits.models import CreditLot, EntryKind, LedgerEntry
from credits.selectors import balance
from payments import services as payment_services
from payments.models import Payment, PaymentStatus
from tests import stripe_events
from tests.factories import UserFactory
from webhooks import services as webhook_services
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_subscription_needed(settings):
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False


def test_valid_event_is_stored_and_applied(client, user):
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.intent(user=user))

    response = stripe_events.deliver(client, payload)

    assert response.status_code == 200
    stored = WebhookEvent.objects.get(stripe_event_id=payload["id"])
    assert stored.status == EventStatus.PROCESSED
    assert stored.attempts == 1
    assert balance(user) == 5 + 30


@pytest.mark.parametrize(
    "tamper",
    ["wrong_secret", "byte_changed", "too_old", "too_new", "no_header"],
)
def test_rejected_deliveries_store_nothing(client, user, tamper):
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.intent(user=user))
    raw = json.dumps(payload).encode()
    if tamper == "wrong_secret":
        response = stripe_events.deliver(client, payload, secret="not-the-secret")
    elif tamper == "byte_changed":
        from webhooks.secrets import webhook_secrets
        from webhooks.signature import sign

        header = sign(raw, webhook_secrets()[0])
        changed = raw.replace(b'"amount": 1999', b'"amount": 1990')
        response = client.post(
            "/webhooks/stripe/",
            data=changed,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
        )
    elif tamper == "too_old":
        response = stripe_events.deliver(client, payload, timestamp=int(time.time()) - 301)
    elif tamper == "too_new":
        response = stripe_events.deliver(client, payload, timestamp=int(time.time()) + 301)
    else:
        response = client.post("/webhooks/stripe/", data=raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    assert balance(user) == 5


def test_secret_roll_accepts_either_configured_secret(client, user, settings):
    settings.STRIPE_WEBHOOK_SECRET = "roll-old-secret,roll-new-secret"
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.intent(user=user))

    assert stripe_events.deliver(client, payload, secret="roll-old-secret").status_code == 200
    assert stripe_events.deliver(client, payload, secret="roll-new-secret").status_code == 200
    assert stripe_events.deliver(client, payload, secret="gone").status_code == 400


def test_unknown_event_type_is_stored_and_answered_200(client):
    payload = stripe_events.event("customer.tax_id.created", {"id": "txi_1", "object": "tax_id"})

    response = stripe_events.deliver(client, payload)

    assert response.status_code == 200
    assert WebhookEvent.objects.get(stripe_event_id=payload["id"]).status == EventStatus.IGNORED


def test_duplicate_delivery_grants_once_and_costs_two_queries(client, user):
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.intent(user=user))
    stripe_events.deliver(client, payload)

    with CaptureQueriesContext(connection) as queries:
        webhook_services.receive(payload)
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) <= 2, statements  # today one plain SELECT
    assert stripe_events.deliver(client, payload).status_code == 200
    assert CreditLot.objects.filter(user=user, source="package").count() == 1


def test_same_intent_in_two_different_events_grants_once(client, user):
    intent = stripe_events.intent(user=user)
    stripe_events.deliver(client, stripe_events.event("payment_intent.succeeded", intent))
    stripe_events.deliver(client, stripe_events.event("payment_intent.succeeded", intent))

    assert balance(user) == 35
    assert LedgerEntry.objects.filter(user=user, kind=EntryKind.GRANT).count() == 2  # gift + 1


def test_success_before_the_pending_row_exists_still_grants_once(client, user):
    """Out of order: Stripe's event outruns our own record of the payment."""
    intent = stripe_events.intent(user=user)

    stripe_events.deliver(client, stripe_events.event("payment_intent.succeeded", intent))

    payment = Payment.objects.get(stripe_payment_intent_id=intent["id"])
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.user == user and payment.package.slug == "starter"
    assert payment.lot.amount == 30
    stripe_events.deliver(client, stripe_events.event("payment_intent.succeeded", intent))
    assert balance(user) == 35


def test_failure_after_success_does_not_undo_it(client, user):
    intent = stripe_events.intent(user=user)
    failed = {
        **intent,
        "status": "requires_payment_method",
        "last_payment_error": {"message": "Your card was declined."},
    }
    stripe_events.deliver(client, stripe_events.event("payment_intent.succeeded", intent))
    stripe_events.deliver(client, stripe_events.event("payment_intent.payment_failed", failed))

    payment = Payment.objects.get(stripe_payment_intent_id=intent["id"])
    assert payment.status == PaymentStatus.SUCCEEDED
    assert balance(user) == 35


def test_failing_handler_leaves_event_failed_with_no_partial_effect_then_retry_completes(
    client, user, monkeypatch
):
    real_set_status = payment_services.set_status

    def explode(*args, **kwargs):
        raise RuntimeError("database hiccup after the grant")

    monkeypatch.setattr(payment_services, "set_status", explode)
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.intent(user=user))

    response = stripe_events.deliver(client, payload)

    assert response.status_code == 500
    stored = WebhookEvent.objects.get(stripe_event_id=payload["id"])
    assert stored.status == EventStatus.FAILED
    assert "database hiccup" in stored.last_error
    assert not CreditLot.objects.filter(user=user, source="package").exists()
    assert balance(user) == 5

    monkeypatch.setattr(payment_services, "set_status", real_set_status)
    assert webhook_services.retry_failed(now=stored.next_attempt_at) == 1
    stored.refresh_from_db()
    assert stored.status == EventStatus.PROCESSED
    assert stored.attempts == 2
    assert balance(user) == 35
    assert webhook_services.retry_failed(now=stored.next_attempt_at) == 0


def test_retry_waits_for_backoff_and_stops_at_the_cap(client, user, monkeypatch):
    monkeypatch.setattr(
        payment_services, "set_status", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x"))
    )
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.intent(user=user))
    stripe_events.deliver(client, payload)
    stored = WebhookEvent.objects.get(stripe_event_id=payload["id"])

    assert webhook_services.retry_failed(now=stored.received_at) == 0  # backoff not over
    for _ in range(20):
        stored.refresh_from_db()
        webhook_services.retry_failed(now=stored.next_attempt_at)
    stored.refresh_from_db()
    assert stored.attempts == webhook_services.MAX_ATTEMPTS
    assert stored.status == EventStatus.FAILED


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_deliveries_of_one_event_grant_once(user):
    from django.test import Client

    payload = stripe_events.event("payment_intent.succeeded", stripe_events.intent(user=user))
    barrier = threading.Barrier(10)
    statuses = []

    def deliver():
        try:
            barrier.wait()
            statuses.append(stripe_events.deliver(Client(), payload).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert statuses == [200] * 10
    assert WebhookEvent.objects.count() == 1
    assert CreditLot.objects.filter(user=user, source="package").count() == 1
    assert balance(user) == 35


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_distinct_events_for_one_intent_grant_once(user):
    from django.test import Client

    intent = stripe_events.intent(user=user)
    barrier = threading.Barrier(10)
    statuses = []

    def deliver():
        try:
            barrier.wait()
            payload = stripe_events.event("payment_intent.succeeded", intent)
            statuses.append(stripe_events.deliver(Client(), payload).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # A delivery that lost the race to create the payment row fails and is retried.
    assert len(statuses) == 10
    webhook_services.retry_failed(now=None)
    for event in WebhookEvent.objects.filter(status=EventStatus.FAILED):
        webhook_services.replay(event=event)
    assert CreditLot.objects.filter(user=user, source="package").count() == 1
    assert balance(user) == 35


def test_package_purchase_adds_to_existing_credits_and_leaves_the_account_alone(client):
    buyer = UserFactory()
    before = {f: getattr(buyer, f) for f in ("email", "display_name", "slug", "is_staff")}
    client.force_login(buyer)

    response = client.post("/api/credits/packages/pro/purchase")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "requires_payment"
    assert body["amount_cents"] == 5900
    assert body["payment_intent_id"] and body["client_secret"]

    intent = payment_services.get_gateway().retrieve_payment_intent(body["payment_intent_id"])
    assert intent["metadata"] == {
        "purpose": "credit_package",
        "user_id": str(buyer.pk),
        "package": "pro",
        "payment_id": str(Payment.objects.get().pk),
    }
    stripe_events.deliver(
        client, stripe_events.event("payment_intent.succeeded", {**intent, "status": "succeeded"})
    )

    assert balance(buyer) == 5 + 200
    buyer.refresh_from_db()
    assert {f: getattr(buyer, f) for f in before} == before
    lots = CreditLot.objects.filter(user=buyer).order_by("id")
    assert [(lot.source, lot.amount) for lot in lots] == [("signup", 5), ("package", 200)]
    assert lots[1].expires_at is not None
    assert lots[0].remaining == 5  # the gift is untouched


def test_purchase_needs_a_subscription_when_the_setting_is_on(client, user, settings):
    settings.CREDITS_REQUIRE_SUBSCRIPTION = True
    client.force_login(user)

    response = client.post("/api/credits/packages/starter/purchase")

    assert response.status_code == 403
    assert response.json()["error"] == "subscription_required"
    assert not Payment.objects.exists()


def test_purchase_of_unknown_package_is_404_and_logged_out_is_401(client, user):
    assert client.post("/api/credits/packages/starter/purchase").status_code == 401
    client.force_login(user)
    response = client.post("/api/credits/packages/nope/purchase")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
