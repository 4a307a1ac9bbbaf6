"""The account side of credits: history (paged, with balance before and after and a
human reason), usage statistics, the price list, and the credits page.

One walk builds a realistic history through the same services the app uses: the
welcome gift, a Starter package paid by card (a signed webhook), a generation that
fails and is given back, a track bought with credits, a full card refund of the
package, a staff adjustment, a second package that expires.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from credits import pricing
from credits import services as credit_services
from credits.context_processors import header_balance
from credits.models import EntryKind, LedgerEntry
from purchases import services as purchases
from purchases.pricing import card_price_cents
from tests.factories import UserFactory
from tests.purchases_helpers import published_track
from tests.test_books_refunds import charge, deliver, pay_starter
from tracks import services as tracks

pytestmark = pytest.mark.django_db

# (kind, amount, human reason) of the walk's entries, oldest first.
WALK = [
    ("grant", 5, "Free welcome credits"),
    ("grant", 30, "Bought Starter package"),
    ("spend", -1, "Generated \u201cNight Drive\u201d"),
    ("refund", 1, "Given back: generation of \u201cNight Drive\u201d failed"),
    ("spend", -2, "Bought \u201cLow Tide\u201d from Mira Sol"),
    ("void", -28, "Refund of Starter package: 28 unused credits removed"),
    ("adjust", 3, "Added by SoundStudio staff: Sorry for the trouble"),
    ("grant", 30, "Bought Starter package"),
    ("expire", -30, "Expired: 30 unused credits of Starter package"),
]


def walk(client, user) -> None:
    artist = UserFactory(display_name="Mira Sol")
    refunded = pay_starter(client, user)
    track = tracks.request_generation(
        creator=user,
        title="Night Drive",
        prompt="synths",
        genre="electronic",
        mood="calm",
        duration_seconds=10,
    )
    tracks.fail_generation(track_id=track.pk, error="engine crashed")
    assert purchases.buy(fan=user, track=published_track(artist, price=2, title="Low Tide"))
    deliver(client, "charge.refunded", charge(refunded, [("re_walk", refunded.amount_cents)]))
    staff = UserFactory()
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    credit_services.adjust(
        user=user,
        amount=3,
        staff_user=staff,
        reason="Sorry for the trouble",
        idempotency_key="adjust:walk",
    )
    pay_starter(client, user)
    assert credit_services.expire_due(now=timezone.now() + dt.timedelta(days=31)) == 1


@pytest.fixture
def walked(client, user):
    walk(client, user)
    client.force_login(user)
    return user


def history(client, **params):
    response = client.get("/api/credits/history", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_history_is_newest_first_with_human_reasons_and_a_chained_balance(client, walked):
    body = history(client, limit=100)

    assert body["total"] == len(WALK)
    entries = body["entries"]
    assert [(e["kind"], e["amount"], e["reason"]) for e in reversed(entries)] == WALK
    # Before and after chain from zero: each entry starts where the older one ended.
    balance = 0
    for entry in reversed(entries):
        assert entry["balance_before"] == balance
        assert entry["balance_after"] == balance + entry["amount"]
        balance = entry["balance_after"]
    assert balance == 8 == client.get("/api/credits/balance").json()["balance"]
    assert set(entries[0]) == {
        "id",
        "kind",
        "amount",
        "balance_before",
        "balance_after",
        "reason",
        "memo",
        "created_at",
    }
    assert entries[-1]["memo"] == "Welcome gift"


def test_history_pages_first_middle_last_and_past_the_end(client, walked):
    everything = history(client, limit=100)["entries"]

    first = history(client, limit=4)
    middle = history(client, limit=4, offset=4)
    last = history(client, limit=4, offset=8)
    past = history(client, limit=4, offset=50)

    assert [e["id"] for e in first["entries"]] == [e["id"] for e in everything[:4]]
    assert [e["id"] for e in middle["entries"]] == [e["id"] for e in everything[4:8]]
    assert [e["id"] for e in last["entries"]] == [e["id"] for e in everything[8:]]
    assert past["entries"] == []
    assert {first["total"], middle["total"], last["total"], past["total"]} == {len(WALK)}
    assert middle["entries"][0]["balance_before"] == everything[4]["balance_before"]
    assert len(history(client)["entries"]) == len(WALK)  # the default limit covers 9


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "101"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "1.5"}, "offset"),
        ({"limit": "10", "offset": "x"}, "offset"),
    ],
)
def test_bad_paging_parameters_are_a_400_naming_the_parameter(client, user, params, parameter):
    client.force_login(user)
    response = client.get("/api/credits/history", params)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert body["message"].startswith(f"{parameter}:")
    assert body["field"] == parameter


def test_history_needs_a_login_and_shows_only_the_users_own_entries(client, walked):
    other = UserFactory()
    client.force_login(other)
    body = history(client)
    assert body["total"] == 1 and body["entries"][0]["reason"] == "Free welcome credits"
    client.logout()
    assert client.get("/api/credits/history").status_code == 401


def test_stats_equal_sums_computed_from_the_entries(client, walked):
    stats = client.get("/api/credits/stats").json()

    entries = list(LedgerEntry.objects.filter(user=walked))
    spent = -sum(e.amount for e in entries if e.kind == EntryKind.SPEND)
    given_back = sum(e.amount for e in entries if e.kind == EntryKind.REFUND)
    assert (spent, given_back) == (3, 1)
    assert stats["total_spent"] == spent - given_back == 2
    assert stats["spent_this_month"] == 2
    assert stats["balance"] == sum(e.amount for e in entries) == 8
    assert stats["allowance_remaining"] == 0
    assert stats["expiring_soon"] == []
    newest = max(entries, key=lambda e: (e.created_at, e.pk))
    assert stats["last_entry"]["id"] == newest.pk
    assert stats["last_entry"]["reason"] == "Expired: 30 unused credits of Starter package"


def test_stats_count_last_months_spending_in_its_own_month(client, user, monkeypatch):
    last_month = timezone.now().replace(day=1) - dt.timedelta(days=3)
    monkeypatch.setattr(credit_services, "_now", lambda: last_month)
    credit_services.spend(user=user, amount=2, reason="test", idempotency_key="old")
    monkeypatch.undo()
    credit_services.spend(user=user, amount=1, reason="test", idempotency_key="new")
    client.force_login(user)

    stats = client.get("/api/credits/stats").json()

    assert (stats["total_spent"], stats["spent_this_month"]) == (3, 1)


def test_stats_list_lots_expiring_within_3_days(client, user):
    soon = timezone.now() + dt.timedelta(days=2)
    credit_services.grant(
        user=user, amount=7, source="admin", idempotency_key="soon", expires_at=soon
    )
    credit_services.grant(
        user=user,
        amount=9,
        source="admin",
        idempotency_key="later",
        expires_at=timezone.now() + dt.timedelta(days=10),
    )
    client.force_login(user)

    stats = client.get("/api/credits/stats").json()

    assert stats["expiring_soon"] == [{"credits": 7, "expires_at": soon.isoformat()}]


def test_costs_match_what_generation_actually_charges(client, user):
    client.force_login(user)
    costs = client.get("/api/credits/costs").json()
    before = client.get("/api/credits/balance").json()["balance"]

    response = client.post(
        "/api/tracks/generate",
        {"title": "Costed", "prompt": "a test"},
        content_type="application/json",
    )

    assert response.status_code == 202, response.content
    after = client.get("/api/credits/balance").json()["balance"]
    assert before - after == costs["costs"]["track_generation"] == 1
    assert costs["credit_price_cents"] == 100


def test_a_tracks_card_price_reads_the_credit_price(client, user):
    assert card_price_cents(3) == 3 * pricing.CREDIT_PRICE_CENTS
    assert client.get("/api/credits/costs").json()["credit_price_cents"] == (
        pricing.CREDIT_PRICE_CENTS
    )


def test_credits_page_names_entries_the_way_a_user_thinks(client, walked):
    page = client.get("/credits/").content.decode()

    for _, _, reason in WALK:
        assert reason in page, reason
    assert "Grant" not in page and "Void" not in page


def test_credits_page_filters_the_history(client, walked):
    def reasons(show):
        page = client.get("/credits/", {"show": show}).content.decode()
        return re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>", page)

    assert reasons("purchases") == ["Bought Starter package"] * 2
    assert reasons("spending") == [
        "Bought \u201cLow Tide\u201d from Mira Sol",
        "Generated \u201cNight Drive\u201d",
    ]
    assert reasons("expiry") == ["Expired: 30 unused credits of Starter package"]
    assert reasons("refunds") == [
        "Refund of Starter package: 28 unused credits removed",
        "Given back: generation of \u201cNight Drive\u201d failed",
    ]
    assert reasons("") == [reason for _, _, reason in reversed(WALK)]


def test_credits_page_shows_expiry_badges_the_allowance_and_the_chart(client, user):
    credit_services.grant(
        user=user,
        amount=7,
        source="admin",
        idempotency_key="soon",
        expires_at=timezone.now() + dt.timedelta(days=2, hours=1),
    )
    later = timezone.now() + dt.timedelta(days=20)
    credit_services.grant(
        user=user, amount=9, source="admin", idempotency_key="later", expires_at=later
    )
    credit_services.spend(user=user, amount=4, reason="test", idempotency_key="used")
    client.force_login(user)

    page = client.get("/credits/").content.decode()

    assert '<span class="badge badge-warning"' in page
    assert "expire in 2 days</span>" in page
    assert f"expire on {later:%-d %b %Y}</span>" in page
    assert "never expire</span>" in page
    assert "Monthly allowance left" in page
    assert '<svg role="img" aria-label="Credits used per month' in page
    assert "Credits used: 4</title>" in page


def test_header_warns_when_credits_expire_within_3_days_in_one_query(
    client, user, django_assert_num_queries
):
    client.force_login(user)
    assert "expire soon" not in client.get("/collection/").content.decode()
    assert "expire within 3 days" not in client.get("/collection/").content.decode()
    credit_services.grant(
        user=user,
        amount=7,
        source="admin",
        idempotency_key="soon",
        expires_at=timezone.now() + dt.timedelta(days=2),
    )

    page = client.get("/collection/").content.decode()

    assert "&#9888; 7 expire soon</a>" in page
    assert "7 of your credits expire within 3 days" in page
    assert "12 credits</a>" in page
    request = RequestFactory().get("/")
    request.user = user
    context = header_balance(request)
    with django_assert_num_queries(1):
        assert (context["header_balance"](), context["header_expiring"]()) == (12, 7)


@pytest.mark.parametrize(
    ("left", "words"),
    [
        (dt.timedelta(days=2, hours=23), "in 2 days"),
        (dt.timedelta(days=1, minutes=5), "in 1 day"),
        (dt.timedelta(hours=5, minutes=59), "in 5 hours"),
        (dt.timedelta(minutes=20), "within the hour"),
    ],
)
def test_expiry_is_said_in_whole_days_or_hours_left(left, words):
    from credits.templatetags.credits import expires_in

    assert expires_in(timezone.now() + left) == words


def test_the_credits_page_queries_do_not_grow_with_the_history(client, walked):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/credits/").status_code == 200
        return len(captured)

    before = queries()
    credit_services.grant(user=walked, amount=40, source="admin", idempotency_key="more")
    for n in range(30):
        credit_services.spend(user=walked, amount=1, reason="test", idempotency_key=f"s{n}")

    assert queries() <= before <= 15  # a page of 25 named in a fixed handful of queries


def test_the_admin_money_panel_names_entries_as_the_user_sees_them(admin_client, user):
    page = admin_client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    assert "The user sees" in page and "Free welcome credits" in page
