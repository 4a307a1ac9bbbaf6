"""Card purchases with the real stripe SDK, through our gateway, against localstripe
and its signed webhooks delivered to a live server; the books checked after every
step."""

import json
import threading
import time
import urllib.request

import pytest

from books.selectors import book_violations
from credits.services import spend
from payments.models import Payment
from purchases import services
from purchases.models import Purchase
from tests.factories import UserFactory
from tests.purchases_helpers import owed, published_track
from webhooks.models import WebhookEvent
from webhooks.signature import sign

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def app_webhook(localstripe, localstripe_settings, live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    localstripe.register_webhook(
        "soundstudio-app",
        live_server.url + "/webhooks/stripe/",
        localstripe_settings.STRIPE_WEBHOOK_SECRET,
    )
    yield live_server
    localstripe.disable_webhook("soundstudio-app")


@pytest.fixture
def setup(client):
    artist = UserFactory(display_name="Nova Lights")
    fan = UserFactory()
    spend(user=fan, amount=5, reason="test", idempotency_key=f"drain:{fan.pk}")
    client.force_login(fan)
    return artist, fan, published_track(artist, price=3, title="Low Tide")


def start(client, track) -> dict:
    response = client.post(f"/api/tracks/{track.pk}/purchase")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["payment_intent_id"].startswith("pi_") and body["checkout_url"] is None
    return body


def confirm(stripe_client, intent_id, method="pm_card_visa"):
    stripe_client.v1.payment_intents.update(intent_id, params={"payment_method": method})
    return stripe_client.v1.payment_intents.confirm(intent_id)


def post_signed(url, body: bytes, secret: str) -> int:
    request = urllib.request.Request(  # noqa: S310 - the live test server
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(body, secret)},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_card_purchase_completes_once_under_duplicate_deliveries_then_refunds(
    client, app_webhook, stripe_client, localstripe_settings, setup
):
    artist, fan, track = setup
    body = start(client, track)
    intent_id = body["payment_intent_id"]
    assert book_violations() == []

    assert confirm(stripe_client, intent_id).status == "succeeded"
    # localstripe delivers payment_intent.succeeded, signed, to our live endpoint.
    assert wait_for(lambda: Purchase.objects.get().status == "completed")
    assert book_violations() == []
    assert owed(artist) == 300 - 45  # localstripe reports no card fee
    stored = WebhookEvent.objects.get(type="payment_intent.succeeded")

    # Ten concurrent redeliveries of that event, and the same news under another id.
    event = stored.payload
    twin = json.dumps({**event, "id": event["id"] + "_twin"}).encode()
    bodies = [json.dumps(event).encode()] * 10 + [twin]
    url = app_webhook.url + "/webhooks/stripe/"
    secret = localstripe_settings.STRIPE_WEBHOOK_SECRET
    statuses = [None] * len(bodies)

    def deliver(i):
        statuses[i] = post_signed(url, bodies[i], secret)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert statuses == [200] * len(bodies)
    purchase = Purchase.objects.get()
    assert purchase.status == "completed"
    assert owed(artist) == 255
    assert WebhookEvent.objects.filter(type="payment_intent.succeeded").count() == 2
    assert book_violations() == []
    assert client.get(f"/tracks/{track.pk}/download").status_code == 200

    staff = UserFactory()
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    purchase = services.refund_purchase(purchase=purchase, staff_user=staff, reason="Test")

    assert purchase.status == "refunded"
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    assert owed(artist) == 0
    assert book_violations() == []
    refunds = stripe_client.v1.refunds.list(params={"payment_intent": intent_id})
    assert len(refunds.data) == 1


def test_an_intent_whose_amount_differs_from_ours_is_not_fulfilled(
    client, app_webhook, stripe_client, setup
):
    artist, fan, track = setup
    intent_id = start(client, track)["payment_intent_id"]
    # Someone changes the amount at Stripe (the dashboard, another integration).
    stripe_client.v1.payment_intents.update(intent_id, params={"amount": 100})

    assert confirm(stripe_client, intent_id).status == "succeeded"

    assert wait_for(lambda: Payment.objects.get().flag == "amount_mismatch")
    purchase = Purchase.objects.get()
    assert (purchase.status, purchase.flag) == ("failed", "amount_mismatch")
    assert owed(artist) == 0
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    assert book_violations() == []


def test_a_declined_card_leaves_the_purchase_failed_and_retryable(
    client, app_webhook, stripe_client, setup
):
    import stripe

    artist, fan, track = setup
    intent_id = start(client, track)["payment_intent_id"]

    with pytest.raises(stripe.CardError):
        confirm(stripe_client, intent_id, method="pm_card_chargeCustomerFail")

    assert wait_for(lambda: Purchase.objects.get().status == "failed")
    assert start(client, track)["payment_intent_id"] == intent_id  # the same intent again
    assert Purchase.objects.get().status == "pending"
    # (localstripe cannot confirm an intent a second time; the test gateway's tests
    # pay it after a decline.)
    assert owed(artist) == 0
    assert book_violations() == []
