"""Concurrent Buy requests with real threads, real connections and real commits.

Each thread is its own signed-in browser (a Django test client) posting to the API;
PostgreSQL's partial unique index and the wallet lock decide who wins.
"""

import pytest
from django.test import Client

from credits.models import EntryKind, LedgerEntry
from credits.selectors import balance
from credits.services import spend
from payments.models import Payment, TestModeIntent
from purchases.models import Purchase
from tests.factories import UserFactory
from tests.purchases_helpers import books, published_track
from tests.threads import run_threads as _run_threads


def run_threads(targets):
    """Browsers over HTTP take longer than bare service calls: a minute to finish."""
    return _run_threads(targets, 60, statement_timeout="30s")


pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STRIPE_SECRET_KEY = ""


def browsers(user, n):
    clients = []
    for _ in range(n):
        client = Client()
        client.force_login(user)
        clients.append(client)
    return clients


def press_buy(client, track):
    def press():
        response = client.post(f"/api/tracks/{track.pk}/purchase")
        return response.status_code, response.json()

    return press


def results(outcomes):
    errors = [exc for _, exc in outcomes if exc is not None]
    assert not errors, errors
    return [result for result, _ in outcomes]


def spends(user):
    return LedgerEntry.objects.filter(user_id=user.pk, kind=EntryKind.SPEND).count()


def test_twenty_concurrent_buys_with_enough_credits_make_one_purchase_and_one_spend():
    fan, track = UserFactory(), published_track(UserFactory(), price=2)

    answers = results(run_threads([press_buy(c, track) for c in browsers(fan, 20)]))

    completed = [body for status, body in answers if status == 200]
    assert len(completed) == 1 and completed[0]["status"] == "completed"
    assert sorted({(s, b.get("error")) for s, b in answers if s != 200}) == [(409, "already_owned")]
    assert Purchase.objects.filter(status="completed").count() == Purchase.objects.count() == 1
    assert spends(fan) == 1 and balance(fan) == 3
    books()


def test_ten_concurrent_buys_without_credits_make_one_pending_purchase_and_one_intent():
    fan, track = UserFactory(), published_track(UserFactory(), price=2)
    spend(user=fan, amount=5, reason="test", idempotency_key="drain")

    answers = results(run_threads([press_buy(c, track) for c in browsers(fan, 10)]))

    assert {status for status, _ in answers} == {200}
    assert {body["status"] for _, body in answers} == {"requires_payment"}
    assert len({body["payment_intent_id"] for _, body in answers}) == 1
    assert len({body["purchase_id"] for _, body in answers}) == 1
    assert Purchase.objects.filter(status="pending").count() == Purchase.objects.count() == 1
    assert Payment.objects.count() == 1 and TestModeIntent.objects.count() == 1
    assert balance(fan) == 0 and spends(fan) == 1  # only the setup's


def test_two_tracks_at_once_with_credits_for_one_pay_one_by_credits_and_one_by_card():
    artist = UserFactory()
    fan = UserFactory()
    first, second = published_track(artist, price=3), published_track(artist, price=3)
    one, two = browsers(fan, 2)

    answers = results(run_threads([press_buy(one, first), press_buy(two, second)]))

    assert {status for status, _ in answers} == {200}
    assert sorted(body["status"] for _, body in answers) == ["completed", "requires_payment"]
    assert balance(fan) == 2 and spends(fan) == 1
    assert sorted(Purchase.objects.values_list("payment_method", "status")) == [
        ("card", "pending"),
        ("credits", "completed"),
    ]
    assert Payment.objects.count() == 1
    books()
