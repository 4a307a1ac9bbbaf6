"""Fan purchases with credits, the errors of Buy, and what buyers get: real PostgreSQL."""

import logging

import pytest
from django.test import Client

from credits.models import EntryKind, LedgerEntry
from credits.selectors import balance
from credits.services import spend
from purchases import services
from purchases.models import Purchase
from tests.factories import UserFactory
from tests.purchases_helpers import books, books_change, owed, paid_credits, published_track
from tracks import services as track_services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def artist():
    return UserFactory(display_name="Nova Lights")


@pytest.fixture
def fan():
    return UserFactory(display_name="Frankie Fan")


def buy(client, track):
    return client.post(f"/api/tracks/{track.pk}/purchase")


def spends(user):
    return LedgerEntry.objects.filter(user_id=user.pk, kind=EntryKind.SPEND).count()


def test_five_free_credits_buy_a_two_credit_track(client, artist, fan):
    track = published_track(artist, price=2)
    before = books()
    client.force_login(fan)

    response = buy(client, track)

    assert response.status_code == 200, response.content
    body = response.json()
    purchase = Purchase.objects.get()
    assert body == {
        "status": "completed",
        "payment_method": "credits",
        "purchase_id": purchase.pk,
        "balance": 3,
    }
    assert balance(fan) == 3
    assert purchase.status == "completed" and purchase.ledger_entry.amount == -2
    # Credits from the free gift carry no money: the sale earns nothing, nothing posts.
    assert (purchase.value_cents, purchase.platform_fee_cents) == (0, 0)
    assert (purchase.card_fee_cents, purchase.artist_earnings_cents) == (0, 0)
    assert books_change(before, books()) == {}
    assert owed(artist) == 0
    download = client.get(f"/tracks/{track.pk}/download")
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    listed = client.get("/api/purchases").json()["purchases"]
    assert [(p["id"], p["track_id"], p["status"]) for p in listed] == [
        (purchase.pk, track.pk, "completed")
    ]
    assert listed[0]["payment_method"] == "credits" and listed[0]["price_credits"] == 2
    assert listed[0]["amount_cents"] == 200 and listed[0]["completed_at"]
    client.force_login(artist)
    sales = client.get("/studio/sales/").content.decode()
    assert "Frankie Fan" in sales and "paid with promotional credits" in sales


def test_paid_credits_earn_the_artist_their_released_cost_less_our_fee(client, artist, fan):
    spend(user=fan, amount=5, reason="test", idempotency_key="use-the-gift")
    paid_credits(fan)  # Starter: 30 credits for $19.99
    track = published_track(artist, price=2)
    before = books()
    client.force_login(fan)

    assert buy(client, track).json()["balance"] == 28

    purchase = Purchase.objects.get()
    # 2 of 30 credits costing 1999 cents release floor(1999 x 2 / 30) = 133 cents;
    # SoundStudio's 15% of 133 is 19.95, rounded half up to 20; the artist earns 113.
    assert purchase.value_cents == 133
    assert (purchase.platform_fee_cents, purchase.artist_earnings_cents) == (20, 113)
    assert purchase.card_fee_cents == 0
    assert books_change(before, books()) == {
        "deferred_revenue": -133,
        "revenue_platform_fees": 20,
        "artist_payable": 113,
    }
    assert owed(artist) == 113
    client.force_login(artist)
    sales = client.get("/studio/sales/").content.decode()
    assert "2 credits" in sales and "$1.13" in sales and "promotional" not in sales


def test_buying_again_is_already_owned_and_charges_nothing(client, artist, fan):
    track = published_track(artist, price=2)
    client.force_login(fan)
    buy(client, track)

    response = buy(client, track)

    assert response.status_code == 409
    assert response.json()["error"] == "already_owned"
    assert response.json()["message"]
    assert balance(fan) == 3 and spends(fan) == 1 and Purchase.objects.count() == 1


def test_the_artist_cannot_buy_their_own_track(client, artist):
    track = published_track(artist, price=2)
    client.force_login(artist)

    response = buy(client, track)

    assert response.status_code == 403
    assert response.json()["error"] == "own_track"
    assert balance(artist) == 5 and spends(artist) == 0 and not Purchase.objects.exists()


def test_a_track_not_for_sale_or_not_published_cannot_be_bought(client, artist, fan):
    client.force_login(fan)
    not_for_sale = published_track(artist, for_sale=False)
    unpublished = published_track(artist)
    track_services.publish(track=unpublished, published=False)

    response = buy(client, not_for_sale)
    assert response.status_code == 409 and response.json()["error"] == "not_for_sale"
    for track_id in (unpublished.pk, 999_999):
        response = client.post(f"/api/tracks/{track_id}/purchase")
        assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert balance(fan) == 5 and not Purchase.objects.exists()


def test_visitors_must_log_in_and_pages_need_their_csrf_token(client, artist, fan):
    track = published_track(artist)

    response = buy(client, track)
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"
    assert client.get("/api/purchases").status_code == 401

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(fan)
    response = buy(strict, track)
    assert response.status_code == 403 and response.json()["error"] == "csrf_failed"
    assert balance(fan) == 5 and not Purchase.objects.exists()


def test_the_allowance_never_pays_for_a_purchase(client, artist, fan):
    from tests.test_tracks import subscribe

    subscribe(fan)  # 5 generations this month, which are for generation only
    spend(user=fan, amount=5, reason="test", idempotency_key="drain")
    client.force_login(fan)

    body = buy(client, published_track(artist, price=1)).json()

    assert body["status"] == "requires_payment" and body["payment_method"] == "card"


def test_only_buyers_and_the_artist_download_the_full_track(client, artist, fan):
    track = published_track(artist)
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    client.force_login(fan)
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    assert "audio_url" not in client.get(f"/api/tracks/{track.pk}").json()

    buy(client, track)

    assert client.get(f"/tracks/{track.pk}/download").status_code == 200
    assert "audio_url" in client.get(f"/api/tracks/{track.pk}").json()
    client.force_login(UserFactory())
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403


def test_buyers_keep_a_track_its_artist_unpublished_and_it_cannot_be_deleted(client, artist, fan):
    track = published_track(artist, title="Keep Me")
    client.force_login(fan)
    buy(client, track)
    track_services.publish(track=track, published=False)

    assert client.get(f"/tracks/{track.pk}/").status_code == 200
    assert client.get(f"/tracks/{track.pk}/download").status_code == 200
    assert "Keep Me" in client.get("/collection/").content.decode()
    assert Client().get(f"/tracks/{track.pk}/").status_code == 404

    assert track_services.has_buyers(track)
    client.force_login(artist)
    page = client.post(f"/studio/tracks/{track.pk}/delete", follow=True).content.decode()
    assert "unpublish it instead" in page
    assert track.__class__.objects.filter(pk=track.pk).exists()


def test_a_price_change_after_buy_does_not_change_the_purchase(client, artist, fan):
    track = published_track(artist, price=2)
    client.force_login(fan)
    buy(client, track)
    track_services.set_price(track=track, price_credits=4, for_sale=True)

    purchase = Purchase.objects.get()
    assert (purchase.price_credits, purchase.amount_cents) == (2, 200)
    assert balance(fan) == 3


def test_the_receipt_shows_the_fee_breakdown_and_is_emailed_after_commit(
    client, artist, fan, mailoutbox, django_capture_on_commit_callbacks
):
    spend(user=fan, amount=5, reason="test", idempotency_key="use-the-gift")
    paid_credits(fan)
    track = published_track(artist, price=2, title="Night Drive")
    client.force_login(fan)
    with django_capture_on_commit_callbacks() as callbacks:
        purchase_id = buy(client, track).json()["purchase_id"]
    assert mailoutbox == []  # queued, not sent in the request
    assert callbacks

    assert services.send_receipt(purchase_id=purchase_id) is True
    assert services.send_receipt(purchase_id=purchase_id) is False  # once
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == [fan.email] and "Night Drive" in mail.subject
    assert "$0.20" in mail.body and "$1.13" in mail.body and "2 credits" in mail.body

    page = client.get(f"/purchases/{purchase_id}/receipt/").content.decode()
    for text in ("Night Drive", "2 credits", "worth $1.33", "$0.00", "$0.20", "$1.13"):
        assert text in page, text
    client.force_login(UserFactory())
    assert client.get(f"/purchases/{purchase_id}/receipt/").status_code == 404


def test_the_collection_lists_bought_tracks_with_downloads(client, artist, fan):
    first = published_track(artist, title="First Light", price=1)
    second = published_track(artist, title="Second Wind", price=1)
    published_track(artist, title="Not Bought", price=1)
    client.force_login(fan)
    buy(client, first)
    buy(client, second)

    page = client.get("/collection/").content.decode()

    assert "First Light" in page and "Second Wind" in page and "Not Bought" not in page
    assert f"/tracks/{first.pk}/download" in page and f"/tracks/{second.pk}/download" in page


def test_every_completed_purchase_logs_one_json_line_without_secrets(
    client, artist, fan, caplog, django_capture_on_commit_callbacks
):
    track = published_track(artist)
    client.force_login(fan)
    with (
        caplog.at_level(logging.INFO, logger="purchases"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        purchase_id = buy(client, track).json()["purchase_id"]

    (record,) = [r for r in caplog.records if r.getMessage() == "purchase completed"]
    assert record.purchase_id == purchase_id and record.fan_id == fan.pk
    assert record.track_id == track.pk and record.method == "credits"
    assert record.price_credits == 2 and record.value_cents == 0
    assert "secret" not in str(record.__dict__)
