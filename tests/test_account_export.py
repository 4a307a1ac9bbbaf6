"""The account's data export: the ledger, purchases and payments as streamed CSV."""

from __future__ import annotations

import csv
import io

import pytest

from accounts import export
from credits import services as credits
from tests.factories import UserFactory
from tests.test_account_history import WALK, walk

pytestmark = pytest.mark.django_db


def download(client, kind):
    response = client.get(f"/accounts/profile/export/{kind}.csv")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith(f'attachment; filename="soundstudio-{kind}-')
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_ledger_csv_is_the_whole_history_with_the_pages_reasons(client, user):
    walk(client, user)
    client.force_login(user)

    rows = download(client, "ledger")

    assert [(r["kind"], int(r["amount"]), r["reason"]) for r in reversed(rows)] == WALK
    assert all(int(r["balance_after"]) == int(r["balance_before"]) + int(r["amount"]) for r in rows)
    history = client.get("/api/credits/history", {"limit": 100}).json()["entries"]
    assert [int(r["id"]) for r in rows] == [e["id"] for e in history]


def test_the_ledger_csv_streams_in_chunks_without_losing_or_repeating_a_row(
    client, user, monkeypatch
):
    monkeypatch.setattr(export, "CHUNK", 3)
    for n in range(10):
        credits.spend(user=user, amount=1, reason="t", idempotency_key=f"s{n}")
        if n == 4:
            credits.grant(user=user, amount=10, source="admin", idempotency_key="more")
    client.force_login(user)

    rows = download(client, "ledger")

    ids = [int(r["id"]) for r in rows]
    assert len(ids) == len(set(ids)) == 12  # gift, grant, 10 spends
    assert ids == sorted(ids, reverse=True)


def test_purchases_and_payments_csv_hold_the_users_own_rows_only(client, user):
    walk(client, user)
    UserFactory()  # someone else, with their own gift
    client.force_login(user)

    purchases = download(client, "purchases")
    payments = download(client, "payments")

    assert [(p["track"], p["artist"], p["paid_with"], p["price_credits"]) for p in purchases] == [
        ("Low Tide", "Mira Sol", "credits", "2")
    ]
    assert [(p["for"], p["package"], p["amount_usd"], p["status"]) for p in payments] == [
        ("Credit package", "Starter", "19.99", "succeeded"),
        ("Credit package", "Starter", "19.99", "refunded"),
    ]


def test_the_export_needs_a_login_and_a_known_kind(client, user):
    assert client.get("/accounts/profile/export/ledger.csv").status_code == 302
    client.force_login(user)
    assert client.get("/accounts/profile/export/passwords.csv").status_code == 404


def test_the_profile_page_offers_the_downloads(client, user):
    client.force_login(user)
    page = client.get("/accounts/profile/").content.decode()
    for kind in ("ledger", "purchases", "payments"):
        assert f'href="/accounts/profile/export/{kind}.csv"' in page
