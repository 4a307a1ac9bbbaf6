"""The artist page for a signed-in fan: a fixed number of queries, and never stale."""

import itertools
import re

import pytest
from django.db import connection

from credits.services import spend
from purchases.models import LIVE, PurchaseFlag, PurchaseStatus
from purchases.selectors import LIVE_SQL
from tests.factories import UserFactory
from tests.purchases_helpers import buttons, deliver, pay_test_intent, published_track

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STRIPE_SECRET_KEY = ""


def header_balance(html):
    return re.search(r'class="balance-pill"[^>]*>(\d+) credits?<', html).group(1)


def _artist_with(n):
    """An artist with n published tracks, dear (9) and cheap (2) in turn, newest last."""
    from tracks import catalog

    artist = UserFactory()
    tracks = [published_track(artist, price=9 if i % 2 else 2, title=f"Song {i}") for i in range(n)]
    catalog.changed(artist.slug)  # as the studio's publish does
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

    # Cold (page not held): the session with its user and the page's version, then
    # artist, track count, tracks, and what is the fan's own among the tracks just
    # drawn (balance, purchases).
    for artist in (small, large):
        with django_assert_num_queries(5):
            view(artist)
    # Warm: the page is held with the artist's id: one query, the session with its
    # user, the balance, the fan's purchases among the page's tracks and the version.
    for artist in (small, large):
        with django_assert_num_queries(1):
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


# --- The signed-in page is drawn once for everyone (core.shell) ----------------------


def _outside_main(html):
    """The page without its <main> (the content) and with the CSRF tokens blanked: the
    token is masked differently on every response."""
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken"', html)
    html = re.sub(r"<title>.*</title>", "<title></title>", html)
    head, rest = html.split('<main class="container main">')
    main, tail = rest.split("</main>")
    messages = re.search(r'<ul class="messages">.*?</ul>', main, re.S)
    return head, messages and messages.group(0), tail.split("</footer>")[0]


def _same_as_base_html(client, artist):
    """The artist page's header, messages and footer are what base.html draws on a
    page rendered in full (the collection), for the same visitor at the same moment."""
    artist_page = client.get(f"/artists/{artist.slug}/").content.decode()
    # A message shows on the next page either way: queue one for each.
    client.post("/accounts/profile/notices/", {"email_notices": "on"})
    with_message = client.get(f"/artists/{artist.slug}/").content.decode()
    client.post("/accounts/profile/notices/", {"email_notices": "on"})
    collection = client.get("/collection/").content.decode()
    assert _outside_main(artist_page)[0] == _outside_main(collection)[0]
    assert _outside_main(with_message) == _outside_main(collection)
    assert _outside_main(with_message)[1]  # the message is there
    assert _outside_main(artist_page)[1] is None  # and shown once only
    return artist_page


@pytest.mark.parametrize("staff", [False, True])
def test_the_signed_in_page_has_the_header_every_page_has(client, staff):
    from accounts.models import User

    artist, tracks = _artist_with(3)
    fan = UserFactory(display_name='O\'Brien & <Sons> "Records"')
    if staff:
        User.objects.filter(pk=fan.pk).update(is_staff=True)
    client.force_login(fan)
    html = _same_as_base_html(client, artist)
    assert "O&#x27;Brien &amp; &lt;Sons&gt; &quot;Records&quot;</a>" in html
    assert ('href="/admin/">Admin</a>' in html) is staff
    assert 'data-balance="5"' in html
    assert "<!--me:" not in html and "<!--buy:" not in html
    assert "Test mode: no real payments" in html


def test_the_signed_in_page_warns_of_expiring_credits_as_every_page_does(client):
    import datetime as dt

    from django.utils import timezone

    from credits.services import grant

    artist, tracks = _artist_with(3)
    fan = UserFactory()
    grant(
        user=fan,
        amount=7,
        source="admin",
        idempotency_key="soon",
        expires_at=timezone.now() + dt.timedelta(days=2),
    )
    client.force_login(fan)
    html = _same_as_base_html(client, artist)
    assert "&#9888; 7 expire soon</a>" in html
    assert "12 credits</a>" in html


def test_the_artist_signed_in_sees_their_own_tracks(client):
    artist, tracks = _artist_with(2)
    client.force_login(artist)
    html = _same_as_base_html(client, artist)
    assert buttons(html) == ["Your track", "Your track"]
    assert f'href="/artists/{artist.slug}/">My artist page</a>' in html


def test_the_page_drawn_for_everyone_holds_nothing_of_a_visitor(client):
    """What is held is the same whoever asked first: no name, no token, no balance."""
    from core import shell
    from tracks import catalog

    artist, tracks = _artist_with(2)
    fan = UserFactory(display_name="Zebedee Unique")
    client.force_login(fan)
    client.get(f"/artists/{artist.slug}/")
    cached = catalog.held_shell(artist.slug, None, shell.key())[1].html
    assert "Zebedee" not in cached and fan.slug not in cached
    assert "csrfmiddlewaretoken" in cached and 'value="<!--me:csrf-->"' in cached
    assert "nonce" not in cached
    assert "<!--me:balance_text-->" in cached


def test_signing_out_and_back_in_as_someone_else_shows_their_page(client):
    artist, tracks = _artist_with(2)
    first, second = UserFactory(display_name="First Fan"), UserFactory(display_name="Second")
    client.force_login(first)
    assert "First Fan</a>" in client.get(f"/artists/{artist.slug}/").content.decode()
    client.post("/accounts/logout/")
    html = client.get(f"/artists/{artist.slug}/").content.decode()
    assert "First Fan" not in html and "Log in to buy" in html
    client.force_login(second)
    html = client.get(f"/artists/{artist.slug}/").content.decode()
    assert "Second</a>" in html and "First Fan" not in html


def test_a_warm_signed_in_page_is_one_query_and_nothing_from_redis(
    client, monkeypatch, django_assert_num_queries
):
    """The session, the user, the fan's figures and the page's version come in one
    PostgreSQL query; the page itself is held in memory."""
    from django.core.cache import caches

    artist, tracks = _artist_with(3)
    client.force_login(UserFactory())
    page = f"/artists/{artist.slug}/"
    client.get(page)
    cache = caches["default"]
    calls = []
    for name in ("get", "get_many", "set", "set_many", "add"):
        method = getattr(cache, name)
        monkeypatch.setattr(
            cache, name, lambda *a, _name=name, _m=method, **k: calls.append(_name) or _m(*a, **k)
        )
    with django_assert_num_queries(1) as queries:
        assert "Buy for 2 credits" in client.get(page).content.decode()
    assert calls == []
    (sql,) = [q["sql"] for q in queries.captured_queries]
    assert "accounts_session" in sql and "purchases_fan_page_state" in sql
    assert "tracks_artist_page" in sql


def test_a_change_shows_on_the_held_page_at_once_in_every_process(client):
    """The version lives in PostgreSQL: a page held by this process is dropped as soon
    as another process (here: a plain UPDATE) commits a change with a new version."""
    from tracks import catalog

    artist, tracks = _artist_with(2)
    client.force_login(UserFactory())
    page = f"/artists/{artist.slug}/"
    assert "Song 1" in client.get(page).content.decode()
    tracks[1].title = "Renamed elsewhere"
    tracks[1].save(update_fields=["title"])
    catalog.changed(artist.slug)
    html = client.get(page).content.decode()
    assert "Renamed elsewhere" in html and "Song 1" not in html
    anonymous = type(client)()
    assert "Renamed elsewhere" in anonymous.get(page).content.decode()


def test_the_page_state_function_is_the_header_credits_and_the_live_rule(client):
    """purchases_fan_page_state (a PL/pgSQL function, for its kept plan) says what
    header_credits and the LIVE rule say, for every status and flag a purchase has."""
    import datetime as dt

    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from credits.selectors import header_credits
    from credits.services import grant
    from purchases.models import Purchase
    from purchases.selectors import fan_page_state, live_statuses

    artist, tracks = _artist_with(3)
    fan = UserFactory()
    grant(
        user=fan,
        amount=4,
        source="admin",
        idempotency_key="soon",
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    client.force_login(fan)
    bought = next(t for t in tracks if t.price_credits == 2)
    assert client.post(f"/api/tracks/{bought.pk}/purchase").json()["status"] == "completed"
    purchase = Purchase.objects.get(fan_id=fan.pk, track=bought)
    ids = [t.pk for t in tracks]
    credits, _ = fan_page_state(fan, ids)
    assert credits == header_credits(fan)
    assert credits.expiring == 2  # the purchase spent the soonest-expiring credits first
    tried = 0
    for status, flag in itertools.product(PurchaseStatus.values, PurchaseFlag.values):
        try:
            with transaction.atomic():
                Purchase.objects.filter(pk=purchase.pk).update(status=status, flag=flag)
        except IntegrityError:
            continue  # a combination the table refuses
        tried += 1
        _, states = fan_page_state(fan, ids)
        live = LIVE.check({"status": status, "flag": flag})
        assert states == ({bought.pk: status} if live else {}), (status, flag)
        assert states == live_statuses(fan.pk, ids), (status, flag)
    assert tried >= len(PurchaseStatus.values)
