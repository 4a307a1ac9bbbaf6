"""What the pages say about buying: Buy buttons, the studio's sales, the admin desk."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from credits.services import spend
from purchases.models import Purchase
from tests.factories import UserFactory
from tests.purchases_helpers import buttons, deliver, pay_test_intent, published_track

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STRIPE_SECRET_KEY = ""


def test_each_button_says_what_pressing_it_will_do(client):
    artist = UserFactory()
    cheap = published_track(artist, price=3, title="Cheap")
    dear = published_track(artist, price=9, title="Dear")
    published_track(artist, price=2, title="Kept", for_sale=False)
    page = f"/artists/{artist.slug}/"
    # Newest first: Kept, Dear, Cheap.
    assert buttons(client.get(page).content.decode()) == [
        "Not for sale",
        "Log in to buy",
        "Log in to buy",
    ]

    fan = UserFactory()  # 5 credits
    client.force_login(fan)
    assert buttons(client.get(page).content.decode()) == [
        "Not for sale",
        "Buy for $9.00",
        "Buy for 3 credits",
    ]
    client.post(f"/api/tracks/{cheap.pk}/purchase")
    html = client.get(page).content.decode()
    assert buttons(html) == ["Not for sale", "Buy for $9.00", "In your collection"]
    assert "2 credits</a>" in html  # the header balance
    body = client.post(f"/api/tracks/{dear.pk}/purchase").json()
    assert buttons(client.get(page).content.decode())[1] == "Finish paying $9.00"
    deliver(client, pay_test_intent(body["payment_intent_id"]))
    assert buttons(client.get(page).content.decode())[1] == "In your collection"

    client.force_login(artist)
    assert buttons(client.get(page).content.decode()) == ["Your track"] * 3
    # The track page has the same button.
    client.force_login(UserFactory())
    track_page = client.get(f"/tracks/{cheap.pk}/").content.decode()
    assert buttons(track_page) == ["Buy for 3 credits"]
    assert 'data-buy="credits"' in track_page
    assert buttons(Client().get(f"/tracks/{cheap.pk}/").content.decode()) == ["Log in to buy"]


def test_the_artist_page_personalises_buttons_in_a_fixed_number_of_queries(client):
    from tests.test_tracks import _publish_n

    small, large = UserFactory(), UserFactory()
    _publish_n(small, 10)
    _publish_n(large, 200)
    fan = UserFactory()
    client.force_login(fan)
    for track in large.tracks.order_by("-published_at", "-id")[:3]:
        Purchase.objects.create(
            fan=fan,
            track=track,
            status="pending",
            payment_method="card",
            price_credits=1,
            amount_cents=100,
        )

    counts = []
    for artist in (small, large, large):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/artists/{artist.slug}/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] >= counts[2]
    assert (
        buttons(client.get(f"/artists/{large.slug}/").content.decode()).count("Finish paying $1.00")
        == 3
    )


def test_the_studio_sales_page_shows_who_bought_what_and_what_is_owed(client):
    artist = UserFactory(display_name="Nova Lights")
    track = published_track(artist, price=3, title="Low Tide")
    card_fan = UserFactory(display_name="Casey Card")
    spend(user=card_fan, amount=5, reason="test", idempotency_key="drain")
    client.force_login(card_fan)
    body = client.post(f"/api/tracks/{track.pk}/purchase").json()
    deliver(client, pay_test_intent(body["payment_intent_id"]))
    credit_fan = UserFactory(display_name="Frankie Fan")
    client.force_login(credit_fan)
    client.post(f"/api/tracks/{track.pk}/purchase")

    client.force_login(artist)
    page = client.get("/studio/sales/").content.decode()

    assert "Casey Card" in page and "Frankie Fan" in page and "Low Tide" in page
    assert "card $3.00" in page and "$2.16" in page
    assert "paid with promotional credits" in page
    assert re.search(r'id="owed">\$2\.16<', page)
    assert "/studio/sales/" in client.get("/studio/").content.decode()
