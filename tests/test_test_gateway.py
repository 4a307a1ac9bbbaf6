"""Test mode end to end: the app's own card page, signed events over real HTTP."""

import pytest

from credits.selectors import balance
from payments.models import Payment, PaymentStatus
from tests.factories import UserFactory
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def buyer(settings, live_server):
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False
    settings.STRIPE_SECRET_KEY = ""
    settings.SITE_URL = live_server.url  # where the test gateway delivers its events
    settings.CELERY_TASK_ALWAYS_EAGER = True  # deliver in-process, over real HTTP
    from soundstudio.celery import app

    app.conf.task_always_eager = True
    yield UserFactory()
    app.conf.task_always_eager = False


def start(client, slug="starter"):
    response = client.post(f"/api/credits/packages/{slug}/purchase")
    assert response.status_code == 200, response.content
    return response.json()


def test_paying_with_the_success_card_grants_the_package_once(client, buyer):
    client.force_login(buyer)
    body = start(client)
    assert body["checkout_url"] == f"/payments/test-checkout/{body['payment_intent_id']}/"
    page = client.get(body["checkout_url"])
    assert b"4242" in page.content and b"Test mode: no real payments" in page.content

    response = client.post(body["checkout_url"], {"card_number": "4242424242424242"})

    assert response.status_code == 302
    assert response["Location"] == f"/credits/?payment={body['payment_intent_id']}"
    status = client.get(f"/api/payments/{body['payment_intent_id']}").json()
    assert status["status"] == "succeeded"
    assert status["credits_added"] == 30
    assert status["balance"] == 35
    assert WebhookEvent.objects.get().status == EventStatus.PROCESSED
    # Paying again does nothing more.
    client.post(body["checkout_url"], {"card_number": "4242424242424242"})
    assert balance(buyer) == 35


@pytest.mark.parametrize(
    ("card", "message"),
    [("4000000000000002", "declined"), ("4000000000000119", "Try again")],
)
def test_failing_cards_show_a_clear_message_and_grant_nothing(client, buyer, card, message):
    client.force_login(buyer)
    body = start(client)

    response = client.post(body["checkout_url"], {"card_number": card})

    assert response.status_code == 200
    assert message in response.content.decode()
    status = client.get(f"/api/payments/{body['payment_intent_id']}").json()
    assert status["status"] == "failed"
    assert message in status["message"]
    assert balance(buyer) == 5

    # The buyer tries again with a good card, and it goes through.
    client.post(body["checkout_url"], {"card_number": "4242424242424242"})
    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED
    assert balance(buyer) == 35


def test_another_user_cannot_open_my_checkout(client, buyer):
    client.force_login(buyer)
    body = start(client)
    client.force_login(UserFactory())

    assert client.get(body["checkout_url"]).status_code == 404
    assert client.get(f"/api/payments/{body['payment_intent_id']}").status_code == 404


def test_admin_refund_voids_the_unused_remainder_and_records_the_shortfall(
    client, buyer, admin_client
):
    from credits.services import spend
    from payments.services import request_refund

    client.force_login(buyer)
    body = start(client)
    client.post(body["checkout_url"], {"card_number": "4242424242424242"})
    spend(user=buyer, amount=12, reason="test", idempotency_key="spend-before-refund")
    assert balance(buyer) == 23  # 12 came from the starter lot (it expires first)

    payment = Payment.objects.get()
    request_refund(payment=payment)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert payment.refunded_cents == 1999
    assert payment.refund_shortfall_credits == 12
    assert balance(buyer) == 5  # the gift stays; spent credits are not clawed back


def test_subscribing_through_the_test_checkout_then_cancel_and_resume(client, buyer, settings):
    from subscriptions.models import Subscription

    client.force_login(buyer)
    assert b"$5 a month" in client.get("/subscribe/").content
    response = client.post("/subscribe/")
    assert response.status_code == 302
    checkout_url = response["Location"]
    assert checkout_url.startswith("/subscribe/test-checkout/cs_test_")

    declined = client.post(checkout_url, {"card_number": "4000000000000002"})
    assert b"declined" in declined.content
    assert not Subscription.objects.exists()

    response = client.post(checkout_url, {"card_number": "4242424242424242"})
    assert response["Location"] == "/account/subscription/?welcome=1"
    subscription = Subscription.objects.get(user=buyer)
    assert subscription.status == "active"
    page = client.get("/account/subscription/").content.decode()
    assert "5 <small" in page and "Cancel at the end of the period" in page

    client.post("/account/subscription/cancel")
    subscription.refresh_from_db()
    assert subscription.status == "active" and subscription.cancel_at_period_end
    assert "Resume Essential" in client.get("/account/subscription/").content.decode()

    client.post("/account/subscription/resume")
    subscription.refresh_from_db()
    assert not subscription.cancel_at_period_end
    # The bought subscription unlocks packages.
    settings.CREDITS_REQUIRE_SUBSCRIPTION = True
    assert client.post("/api/credits/packages/starter/purchase").status_code == 200
