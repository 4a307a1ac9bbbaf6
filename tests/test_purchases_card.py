"""Card purchases on the built-in test gateway: Buy, then signed webhook events (the
same code path as Stripe's), completion, failure, refunds and disputes, with the
books checked to the cent after every step."""

import pytest

from credits.selectors import balance
from credits.services import spend
from payments.models import Payment, TestModeIntent
from purchases import services
from purchases.models import Purchase
from tests.factories import UserFactory
from tests.purchases_helpers import (
    books,
    books_change,
    charge_event,
    deliver,
    dispute_event,
    intent_event,
    owed,
    pay_test_intent,
    published_track,
)
from tracks import services as track_services
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

FEE_300 = 39  # the test gateway's card fee on $3.00: 2.9% (9 cents) + 30 cents


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STRIPE_SECRET_KEY = ""  # the test gateway


@pytest.fixture
def artist():
    return UserFactory(display_name="Nova Lights")


@pytest.fixture
def fan(client):
    """A signed-in fan with no credits left."""
    user = UserFactory(display_name="Casey Card")
    spend(user=user, amount=5, reason="test", idempotency_key=f"drain:{user.pk}")
    client.force_login(user)
    return user


@pytest.fixture
def track(artist):
    return published_track(artist, price=3, title="Low Tide")


def start(client, track):
    response = client.post(f"/api/tracks/{track.pk}/purchase")
    assert response.status_code == 200, response.content
    return response.json()


def bought(client, track):
    """Buy by card and pay: the purchase once the webhook has completed it."""
    body = start(client, track)
    deliver(client, pay_test_intent(body["payment_intent_id"]))
    return Purchase.objects.get(pk=body["purchase_id"])


def test_without_credits_buy_returns_a_payment_intent_for_the_card_price(client, fan, track):
    body = start(client, track)

    purchase = Purchase.objects.get()
    payment = Payment.objects.get()
    assert body == {
        "status": "requires_payment",
        "payment_method": "card",
        "purchase_id": purchase.pk,
        "payment_intent_id": payment.stripe_payment_intent_id,
        "client_secret": payment.client_secret,
        "amount_cents": 300,
        "checkout_url": f"/payments/test-checkout/{payment.stripe_payment_intent_id}/",
    }
    assert (purchase.status, purchase.payment_method, purchase.payment) == (
        "pending",
        "card",
        payment,
    )
    assert (payment.purpose, payment.amount_cents, payment.status) == (
        "track_purchase",
        300,
        "pending",
    )
    metadata = TestModeIntent.objects.get().metadata
    assert metadata["purpose"] == "track_purchase"
    assert metadata["user_id"] == str(fan.pk) and metadata["track_id"] == str(track.pk)
    # A second click, or a second tab, gets the same PaymentIntent.
    assert start(client, track) == body
    assert Payment.objects.count() == TestModeIntent.objects.count() == 1


def test_the_webhook_completes_the_purchase_once_and_the_books_match(client, artist, fan, track):
    before = books()
    body = start(client, track)
    event = pay_test_intent(body["payment_intent_id"])
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403  # not paid yet

    deliver(client, event)
    deliver(client, event)  # Stripe delivers more than once
    deliver(client, {**event, "id": event["id"] + "x"})  # and sometimes as another event

    purchase = Purchase.objects.get()
    assert purchase.status == "completed"
    # $3.00 by card: our 15% is 45 cents; the 39-cent card fee is borne by the artist.
    assert (purchase.value_cents, purchase.card_fee_cents) == (300, FEE_300)
    assert (purchase.platform_fee_cents, purchase.artist_earnings_cents) == (45, 300 - 45 - 39)
    assert books_change(before, books()) == {
        "cash": 300 - FEE_300,
        "revenue_platform_fees": 45,
        "artist_payable": 216,
    }
    assert owed(artist) == 216
    assert WebhookEvent.objects.filter(status="processed").count() == 2
    assert client.get(f"/tracks/{track.pk}/download").status_code == 200
    assert balance(fan) == 0
    page = client.get(f"/collection/?purchase={purchase.pk}").content.decode()
    assert "Bought." in page and "Low Tide" in page
    receipt = client.get(f"/purchases/{purchase.pk}/receipt/").content.decode()
    for text in ("$3.00", "$0.39", "$0.45", "$2.16"):
        assert text in receipt, text


def test_the_test_card_page_takes_the_fan_to_the_collection_confirming(client, fan, track):
    body = start(client, track)

    response = client.post(body["checkout_url"], {"card_number": "4242424242424242"})

    assert response.status_code == 302
    assert response["Location"] == f"/collection/?purchase={body['purchase_id']}"
    page = client.get(response["Location"]).content.decode()
    # The webhook has not arrived yet (test mode delivers it after the commit).
    assert "Confirming your payment" in page and "Bought." not in page
    assert client.get(f"/api/purchases/{body['purchase_id']}").json()["status"] == "pending"


def test_a_price_change_or_unpublishing_after_buy_changes_nothing(client, artist, fan, track):
    body = start(client, track)
    track_services.set_price(track=track, price_credits=9, for_sale=False)
    track_services.publish(track=track, published=False)

    deliver(client, pay_test_intent(body["payment_intent_id"]))

    purchase = Purchase.objects.get()
    assert (purchase.status, purchase.amount_cents, purchase.price_credits) == ("completed", 300, 3)
    assert client.get(f"/tracks/{track.pk}/download").status_code == 200


def test_an_intent_whose_amount_differs_from_ours_is_not_fulfilled(client, artist, fan, track):
    before = books()
    body = start(client, track)
    intent_id = body["payment_intent_id"]
    pay_test_intent(intent_id)

    deliver(
        client, intent_event(intent_id, "payment_intent.succeeded", amount=100, amount_received=100)
    )

    purchase = Purchase.objects.get()
    assert (purchase.status, purchase.flag) == ("failed", "amount_mismatch")
    assert Payment.objects.get().flag == "amount_mismatch"
    assert books_change(before, books()) == {}
    assert owed(artist) == 0
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    # Flagged for admins, it no longer blocks the fan from buying the track again.
    again = start(client, track)
    assert again["purchase_id"] != purchase.pk
    assert again["payment_intent_id"] != intent_id


def test_a_declined_card_fails_the_purchase_and_the_fan_can_try_again(client, fan, track):
    body = start(client, track)
    intent_id = body["payment_intent_id"]

    deliver(client, pay_test_intent(intent_id, card="4000000000000002"))

    purchase = Purchase.objects.get()
    assert purchase.status == "failed" and "declined" in purchase.failure_message
    assert client.get(f"/api/purchases/{purchase.pk}").json()["status"] == "failed"
    # Buy again: the same purchase and PaymentIntent, pending once more.
    assert start(client, track)["payment_intent_id"] == intent_id
    purchase.refresh_from_db()
    assert purchase.status == "pending" and purchase.failure_message == ""

    deliver(client, pay_test_intent(intent_id))

    purchase.refresh_from_db()
    assert purchase.status == "completed"
    assert Purchase.objects.count() == 1


def test_a_late_success_completes_a_purchase_left_failed(client, fan, track):
    """The fan retried on the card form (without pressing Buy again), and it worked."""
    body = start(client, track)
    intent_id = body["payment_intent_id"]
    deliver(client, pay_test_intent(intent_id, card="4000000000000119"))
    assert Purchase.objects.get().status == "failed"

    deliver(client, pay_test_intent(intent_id))

    assert Purchase.objects.get().status == "completed"


def test_a_canceled_intent_cancels_the_purchase_and_the_fan_can_buy_again(client, fan, track):
    body = start(client, track)

    deliver(
        client,
        intent_event(body["payment_intent_id"], "payment_intent.canceled", status="canceled"),
    )

    purchase = Purchase.objects.get()
    assert purchase.status == "canceled"
    again = start(client, track)
    assert again["purchase_id"] != purchase.pk


def test_a_full_refund_revokes_the_download_and_reverses_the_earnings(client, artist, fan, track):
    purchase = bought(client, track)
    before = books()
    staff = UserFactory()
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])

    purchase = services.refund_purchase(purchase=purchase, staff_user=staff, reason="Asked nicely")

    assert purchase.status == "refunded"
    assert (purchase.refunded_by, purchase.refund_reason) == (staff, "Asked nicely")
    assert purchase.refunded_cents == 300
    # The artist's 216 and our 45 come back; Stripe keeps the 39-cent fee: a loss.
    assert books_change(before, books()) == {
        "cash": -300,
        "revenue_platform_fees": -45,
        "artist_payable": -216,
        "refunds": FEE_300,
    }
    assert owed(artist) == 0
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    # Stripe's charge.refunded for the same refund changes nothing more.
    after = books()
    deliver(client, charge_event(purchase.payment.stripe_payment_intent_id))
    assert books_change(after, books()) == {}
    # The fan may buy it again.
    assert start(client, track)["purchase_id"] != purchase.pk


def test_partial_refunds_keep_access_and_reverse_the_earnings_pro_rata(client, artist, fan, track):
    from payments.services import request_refund

    purchase = bought(client, track)
    start_books = books()

    request_refund(payment=purchase.payment, amount_cents=100)
    purchase.refresh_from_db()
    assert (purchase.status, purchase.refunded_cents) == ("completed", 100)
    assert client.get(f"/tracks/{track.pk}/download").status_code == 200
    # A third of the amount: floor(45 / 3) = 15 of our fee, floor(216 / 3) = 72 of the
    # artist's; the card fee's share (13 cents) is not recovered.
    assert books_change(start_books, books()) == {
        "cash": -100,
        "revenue_platform_fees": -15,
        "artist_payable": -72,
        "refunds": 13,
    }

    request_refund(payment=purchase.payment, amount_cents=150)
    request_refund(payment=purchase.payment)  # the last 50 cents
    purchase.refresh_from_db()
    assert (purchase.status, purchase.refunded_cents) == ("refunded", 300)
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    # However it is split, a whole refund reverses exactly what the sale credited.
    assert books_change(start_books, books()) == {
        "cash": -300,
        "revenue_platform_fees": -45,
        "artist_payable": -216,
        "refunds": FEE_300,
    }
    assert owed(artist) == 0


def test_a_dispute_suspends_access_and_earnings_and_a_win_restores_both(client, artist, fan, track):
    purchase = bought(client, track)
    intent_id = purchase.payment.stripe_payment_intent_id
    start_books = books()

    deliver(client, dispute_event(intent_id, "charge.dispute.created", dispute_id="dp_1"))

    purchase.refresh_from_db()
    assert purchase.status == "disputed"
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    assert owed(artist) == 0  # the artist's share is on hold
    assert books_change(start_books, books()) == {
        "cash": -300,
        "revenue_platform_fees": -45,
        "artist_payable": -216,
        "refunds": FEE_300,
    }
    assert "On hold" in client.get("/collection/").content.decode()
    client.force_login(artist)
    assert "on hold: disputed" in client.get("/studio/sales/").content.decode()
    client.force_login(fan)

    deliver(
        client, dispute_event(intent_id, "charge.dispute.closed", dispute_id="dp_1", status="won")
    )

    purchase.refresh_from_db()
    assert purchase.status == "completed"
    assert client.get(f"/tracks/{track.pk}/download").status_code == 200
    assert owed(artist) == 216
    assert books_change(start_books, books()) == {}


def test_a_dispute_lost_is_a_refund(client, artist, fan, track):
    purchase = bought(client, track)
    intent_id = purchase.payment.stripe_payment_intent_id
    start_books = books()

    deliver(client, dispute_event(intent_id, "charge.dispute.created", dispute_id="dp_2"))
    deliver(
        client, dispute_event(intent_id, "charge.dispute.closed", dispute_id="dp_2", status="lost")
    )

    purchase.refresh_from_db()
    assert (purchase.status, purchase.refunded_cents) == ("refunded", 300)
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    assert owed(artist) == 0
    assert books_change(start_books, books()) == {
        "cash": -300,
        "revenue_platform_fees": -45,
        "artist_payable": -216,
        "refunds": FEE_300,
    }


def test_a_credit_purchase_refund_gives_the_credits_back_to_their_lots(client, artist):
    from credits.models import CreditLot
    from tests.purchases_helpers import paid_credits

    fan = UserFactory()
    spend(user=fan, amount=5, reason="test", idempotency_key="use-the-gift")
    paid_credits(fan)
    track = published_track(artist, price=2)
    client.force_login(fan)
    purchase_id = start_credits(client, track)
    before = books()
    staff = UserFactory()
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])

    purchase = services.refund_purchase(
        purchase=Purchase.objects.get(pk=purchase_id), staff_user=staff, reason="Wrong track"
    )

    assert purchase.status == "refunded"
    assert balance(fan) == 30
    given_back = CreditLot.objects.get(user=fan, source="refund")
    package_lot = CreditLot.objects.get(user=fan, source="package")
    assert (given_back.amount, given_back.cost_cents) == (2, 133)
    assert given_back.expires_at == package_lot.expires_at
    assert books_change(before, books()) == {
        "deferred_revenue": 133,
        "revenue_platform_fees": -20,
        "artist_payable": -113,
    }
    assert owed(artist) == 0
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    with pytest.raises(services.InvalidTransition):
        services.refund_purchase(purchase=purchase, staff_user=staff, reason="again")


def start_credits(client, track):
    body = client.post(f"/api/tracks/{track.pk}/purchase").json()
    assert body["status"] == "completed", body
    return body["purchase_id"]


def test_a_refund_needs_staff_and_a_reason(client, artist, fan, track):
    purchase = bought(client, track)
    with pytest.raises(PermissionError):
        services.refund_purchase(purchase=purchase, staff_user=fan, reason="because")
    staff = UserFactory()
    staff.is_staff = True
    with pytest.raises(ValueError):
        services.refund_purchase(purchase=purchase, staff_user=staff, reason="  ")
    purchase.refresh_from_db()
    assert purchase.status == "completed"


def test_a_paid_intent_we_hold_no_rows_for_completes_a_purchase_from_its_metadata(
    client, artist, fan, track
):
    """Stripe is the truth: a track purchase paid elsewhere (or whose rows a restore
    lost) is completed from the metadata, once."""
    import secrets

    from payments import testmode

    intent = {
        "id": f"pi_{secrets.token_hex(8)}",
        "object": "payment_intent",
        "amount": 300,
        "amount_received": 300,
        "currency": "usd",
        "status": "succeeded",
        "metadata": {
            "purpose": "track_purchase",
            "user_id": str(fan.pk),
            "track_id": str(track.pk),
        },
        "latest_charge": None,
        "last_payment_error": None,
    }
    event = testmode.event("payment_intent.succeeded", intent)

    deliver(client, event)
    deliver(client, {**event, "id": event["id"] + "x"})

    purchase = Purchase.objects.get()
    assert (purchase.status, purchase.fan, purchase.track) == ("completed", fan, track)
    assert purchase.payment.stripe_payment_intent_id == intent["id"]
    assert owed(artist) == 216
    books()
