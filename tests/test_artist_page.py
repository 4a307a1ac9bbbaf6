"""The artist page for a signed-in fan: a fixed number of queries, and never stale."""

import itertools
import re

import pytest
from django.db import connection

from credits.services import spend
from purchases.models import LIVE, PurchaseFlag, PurchaseStatus
from purchases.selectors import LIVE_SQL
from tests.factories import UserFactory
from tests.purchases_helpers import deliver, pay_test_intent, published_track

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STRIPE_SECRET_KEY = ""


def buttons(html):
    """The Buy button text of every track row, in page order."""
    found = re.findall(r'class="[^"]*buy-(?:button|state)[^"]*"[^>]*>([^<]+)<', html)
    return [text.strip() for text in found]


def header_balance(html):
    return re.search(r'class="balance-pill"[^>]*>(\d+) credits?<', html).group(1)


def _artist_with(n):
    """An artist with n published tracks, dear (9) and cheap (2) in turn, newest last."""
    artist = UserFactory()
    tracks = [published_track(artist, price=9 if i % 2 else 2, title=f"Song {i}") for i in range(n)]
    return artist, tracks


def _fan_of(tracks, client, fan=None):
    """A fan who owns one track (bought with credits), is paying for another by card,
    and has 3 credits left (of a new fan's 5): enough for the cheap ones, not the dear."""
    fan = fan or UserFactory()
    client.force_login(fan)
    cheap = next(t for t in reversed(tracks) if t.price_credits == 2)
    dear = next(t for t in reversed(tracks) if t.price_credits == 9)
    assert client.post(f"/api/tracks/{cheap.pk}/purchase").json()["status"] == "completed"
    assert client.post(f"/api/tracks/{dear.pk}/purchase").json()["status"] == "requires_payment"
    return fan


@pytest.mark.parametrize("page", [1, 2])
def test_the_signed_in_artist_page_takes_the_same_queries_for_5_or_40_tracks(
    client, django_assert_num_queries, page
):
    small, small_tracks = _artist_with(5)
    large, large_tracks = _artist_with(40)
    fan = _fan_of(small_tracks, client)
    _fan_of(large_tracks, client, fan)  # the same fan owns and pays for one of each

    def view(artist):
        query = f"?page={page}" if artist is large else ""
        response = client.get(f"/artists/{artist.slug}/{query}")
        assert response.status_code == 200
        return response.content.decode()

    # Cold (content not cached): user, artist, track count, tracks, balance, the fan's
    # purchases among the page's tracks. The session comes from the cache.
    for artist in (small, large):
        with django_assert_num_queries(6):
            view(artist)
    # Warm: the content comes from the cache with the artist's id.
    for artist in (small, large):
        with django_assert_num_queries(3):
            html = view(artist)
    assert header_balance(html) == "1"  # 5 - 2 - 2: one cheap track bought from each artist

    assert len(buttons(html)) == 20
    assert set(buttons(view(small))) == {
        "In your collection",
        "Finish paying $9.00",
        "Buy for $2.00",  # 1 credit left: not enough for 2
        "Buy for $9.00",
    }


def test_buttons_follow_the_fans_balance_and_collection(client):
    artist, tracks = _artist_with(5)
    _fan_of(tracks, client)
    page = f"/artists/{artist.slug}/"
    # Newest first: Song 4 (2), 3 (9), 2 (2), 1 (9), 0 (2); bought Song 4, paying for Song 3.
    html = client.get(page).content.decode()
    assert buttons(html) == [
        "In your collection",
        "Finish paying $9.00",
        "Buy for 2 credits",
        "Buy for $9.00",
        "Buy for 2 credits",
    ]
    assert header_balance(html) == "3"


def test_after_a_purchase_the_next_view_shows_it(client):
    """The content is cached for everyone; the balance and the buttons never are."""
    artist, tracks = _artist_with(3)
    fan = UserFactory()
    client.force_login(fan)
    page = f"/artists/{artist.slug}/"
    # Newest first: Song 2 (2 credits), Song 1 (9), Song 0 (2).
    assert buttons(client.get(page).content.decode()) == [
        "Buy for 2 credits",
        "Buy for $9.00",
        "Buy for 2 credits",
    ]
    client.post(f"/api/tracks/{tracks[2].pk}/purchase")
    html = client.get(page).content.decode()
    assert buttons(html) == ["In your collection", "Buy for $9.00", "Buy for 2 credits"]
    assert header_balance(html) == "3"

    body = client.post(f"/api/tracks/{tracks[1].pk}/purchase").json()
    assert buttons(client.get(page).content.decode())[1] == "Finish paying $9.00"
    deliver(client, pay_test_intent(body["payment_intent_id"]))
    assert buttons(client.get(page).content.decode())[1] == "In your collection"

    # Credits spent elsewhere (a generation) show on the next view too.
    spend(user=fan, amount=2, reason="test", idempotency_key="elsewhere")
    html = client.get(page).content.decode()
    assert header_balance(html) == "1"
    assert buttons(html)[2] == "Buy for $2.00"


def test_live_sql_is_the_live_purchase_rule():
    """The artist page's raw SQL says exactly what purchases.models.LIVE says."""
    for status, flag in itertools.product(PurchaseStatus.values, PurchaseFlag.values):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {LIVE_SQL} FROM (VALUES (%s, %s)) AS v(status, flag)",  # noqa: S608
                [status, flag],
            )
            in_sql = cursor.fetchone()[0]
        assert in_sql == LIVE.check({"status": status, "flag": flag}), (status, flag)
