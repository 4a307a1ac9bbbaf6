"""The journal's guarantees in PostgreSQL, the books' commands, and whole-cent rounding.

- a transaction's lines must sum to zero, checked at COMMIT (a deferred constraint
  trigger): raw SQL that commits an unbalanced one fails, a balanced one written line
  by line commits;
- journal rows are append-only: UPDATE and DELETE are refused, and TRUNCATE too
  unless the session opts in (`books.allow_truncate`, on for the test database only);
- `books_report --json` prints exactly the keys DESIGN.md section 4 pins, in cents,
  natural sign, and `--from/--to` limit it to [from, to + 1 day);
- `check_books` exits 1 naming every violation, 0 when all is well;
- `books.money.percent_of` rounds half up.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from books import money
from books import services as books
from books.models import AccountCode, JournalCause, JournalLine, JournalTransaction
from books.selectors import account_balances, book_violations
from credits import services as credits
from payments import services as payments
from tests import stripe_events
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
PINNED_ACCOUNTS = {
    "cash",
    "processor_fees",
    "deferred_revenue",
    "revenue_usage",
    "revenue_breakage",
    "revenue_subscriptions",
    "revenue_platform_fees",
    "refunds",
    "artist_payable",
}
UTC = dt.UTC


def release(cost_left: int, remaining: int, burned: int) -> int:
    if burned == remaining:
        return cost_left
    return math.floor(Fraction(cost_left * burned, remaining))


def card_fee(cents: int) -> int:
    return int((Decimal(cents) * Decimal("0.029")).quantize(Decimal(1), ROUND_HALF_UP)) + 30


def insert_transaction(cursor, key: str) -> int:
    cursor.execute(
        "INSERT INTO books_journal_transaction"
        " (idempotency_key, event, cause, cause_ref, reason, memo, created_at)"
        " VALUES (%s, 'raw_sql', 'system', '', '', '', now()) RETURNING id",
        [key],
    )
    return cursor.fetchone()[0]


def insert_line(cursor, transaction_id: int, account: str, cents: int) -> None:
    cursor.execute(
        "INSERT INTO books_journal_line (transaction_id, account_id, amount_cents)"
        " SELECT %s, id, %s FROM books_account WHERE key = %s",
        [transaction_id, cents, account],
    )
    assert cursor.rowcount == 1


def post(key: str, lines, *, created_at=None):
    return books.post(
        key=key, event="test", lines=lines, cause=JournalCause.SYSTEM, created_at=created_at
    )


def report(*args) -> dict:
    out = io.StringIO()
    call_command("books_report", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


# --- The sum is checked at COMMIT --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("amounts", [[100], [100, -99], [250, -100, -100]])
def test_raw_sql_that_writes_an_unbalanced_transaction_fails_at_commit(amounts):
    accounts = ["cash", "revenue_usage", "refunds"]
    written = []
    with (
        pytest.raises(IntegrityError) as caught,
        transaction.atomic(),  # COMMIT on leaving it: where the check must fail
        connection.cursor() as cursor,
    ):
        pk = insert_transaction(cursor, "raw:unbalanced")
        for account, cents in zip(accounts, amounts, strict=False):
            insert_line(cursor, pk, account, cents)
            written.append(cents)  # each INSERT itself is accepted: the check is deferred
    assert written == amounts, "the lines must be refused at COMMIT, not one by one"
    assert caught.value.__cause__.sqlstate == "23514"  # check_violation
    assert "does not balance" in str(caught.value)
    assert not JournalTransaction.objects.filter(idempotency_key="raw:unbalanced").exists()
    assert not JournalLine.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_balanced_transaction_written_line_by_line_in_one_db_transaction_commits():
    with transaction.atomic(), connection.cursor() as cursor:
        pk = insert_transaction(cursor, "raw:balanced")
        insert_line(cursor, pk, "cash", 250)  # unbalanced for now: allowed until COMMIT
        insert_line(cursor, pk, "revenue_usage", -200)
        insert_line(cursor, pk, "revenue_breakage", -50)

    posting = JournalTransaction.objects.get(idempotency_key="raw:balanced")
    assert sorted(posting.lines.values_list("account__key", "amount_cents")) == [
        ("cash", 250),
        ("revenue_breakage", -50),
        ("revenue_usage", -200),
    ]
    balances = account_balances()
    assert (balances["cash"], balances["revenue_usage"], balances["revenue_breakage"]) == (
        250,
        200,
        50,
    )
    assert book_violations() == []


# --- Append-only -------------------------------------------------------------------------

REFUSED = {
    "update transaction": "UPDATE books_journal_transaction SET memo = 'changed' WHERE id = %s",
    "delete transaction": "DELETE FROM books_journal_transaction WHERE id = %s",
    "update line": "UPDATE books_journal_line SET amount_cents = amount_cents * 2"
    " WHERE transaction_id = %s",
    "delete line": "DELETE FROM books_journal_line WHERE transaction_id = %s",
}


def journal_rows():
    return (
        list(JournalTransaction.objects.values_list("id", "idempotency_key", "memo")),
        sorted(JournalLine.objects.values_list("id", "transaction_id", "amount_cents")),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("sql", REFUSED.values(), ids=REFUSED.keys())
def test_update_and_delete_of_journal_rows_are_refused(sql):
    posting = post("kept", [(AccountCode.CASH, 100), (AccountCode.REVENUE_USAGE, -100)])
    before = journal_rows()

    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [posting.pk])

    assert journal_rows() == before


@pytest.mark.django_db
def test_orm_updates_and_deletes_of_journal_rows_are_refused_too():
    posting = post("kept", [(AccountCode.CASH, 100), (AccountCode.REVENUE_USAGE, -100)])
    before = journal_rows()
    attempts = [
        lambda: JournalTransaction.objects.filter(pk=posting.pk).update(memo="changed"),
        lambda: JournalLine.objects.filter(transaction=posting).update(amount_cents=1),
        lambda: JournalLine.objects.filter(transaction=posting).delete(),
    ]
    for attempt in attempts:
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            attempt()
    assert journal_rows() == before


@pytest.mark.django_db(transaction=True)  # committed rows: no pending balance check
@pytest.mark.parametrize(
    "sql", ["TRUNCATE books_journal_line", "TRUNCATE books_journal_transaction CASCADE"]
)
def test_truncate_is_refused_unless_the_session_allows_it(sql):
    post("kept", [(AccountCode.CASH, 100), (AccountCode.REVENUE_USAGE, -100)])
    before = journal_rows()
    with connection.cursor() as cursor:
        cursor.execute("SHOW books.allow_truncate")
        assert cursor.fetchone()[0] == "on"  # the test database's default, for flushes
        cursor.execute("SET books.allow_truncate = off")
        try:
            with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
                cursor.execute(sql)
        finally:
            cursor.execute("SET books.allow_truncate = on")
    assert journal_rows() == before


# --- books_report ------------------------------------------------------------------------


@pytest.mark.django_db
def test_books_report_json_prints_the_pinned_keys_in_cents(settings):
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False
    buyer, artist_a, artist_b = UserFactory(), UserFactory(), UserFactory()
    expected = dict.fromkeys(PINNED_ACCOUNTS, 0)

    # A Starter paid by card ($19.99, 30 credits), with Stripe's fee.
    intent = stripe_events.intent(user=buyer, package="starter", amount=1999)
    payment = payments.complete_from_intent(intent, cause_ref="evt_paid")
    fee = card_fee(1999)
    expected.update(cash=1999 - fee, processor_fees=fee, deferred_revenue=1999)
    remaining, cost_left = 30, 1999

    # 3 credits spent on generation.
    credits.spend(user=buyer, amount=3, reason="track_generation", idempotency_key="gen:1")
    used = release(cost_left, remaining, 3)
    remaining, cost_left = remaining - 3, cost_left - used
    expected["deferred_revenue"] -= used
    expected["revenue_usage"] += used

    # $5.00 refunded: ceil(30 x 500 / 1999) = 8 credits void.
    payments.apply_refund(payment=payment, refund_id="re_1", amount_cents=500, cause_ref="evt_r")
    voided = release(cost_left, remaining, 8)
    remaining, cost_left = remaining - 8, cost_left - voided
    expected["deferred_revenue"] -= voided
    expected["refunds"] += 500 - voided
    expected["cash"] -= 500

    # The rest of the package expires unused.
    assert credits.expire_due(now=timezone.now() + dt.timedelta(days=31)) == 1
    expected["deferred_revenue"] -= cost_left
    expected["revenue_breakage"] += cost_left

    # An Essential invoice, and two fan purchases by card (artists' shares, our fees).
    payments.record_invoice_payment(
        invoice={"id": "in_1", "amount_paid": 500, "currency": "usd"},
        user_id=buyer.pk,
        cause_ref="evt_inv",
    )
    expected["cash"] += 500 - card_fee(500)
    expected["processor_fees"] += card_fee(500)
    expected["revenue_subscriptions"] += 500
    for key, artist, cents in [("sale:1", artist_a, 1000), ("sale:2", artist_b, 300)]:
        platform = money.percent_of(cents, 15)
        post(
            key,
            [
                (AccountCode.CASH, cents),
                (books.artist_account(artist), -(cents - platform)),
                (AccountCode.REVENUE_PLATFORM_FEES, -platform),
            ],
        )
        expected["cash"] += cents
        expected["artist_payable"] += cents - platform
        expected["revenue_platform_fees"] += platform

    data = report()

    assert set(data) == {"accounts", "balanced"}
    assert set(data["accounts"]) == PINNED_ACCOUNTS
    assert data["accounts"] == expected
    assert all(type(cents) is int for cents in data["accounts"].values())
    assert data["balanced"] is True
    # Double entry: debit-side balances equal credit-side balances.
    debit_side = {"cash", "processor_fees", "refunds"}
    assert sum(v for k, v in expected.items() if k in debit_side) == sum(
        v for k, v in expected.items() if k not in debit_side
    )

    # Deferred revenue no longer matching the lots: not balanced.
    post("stray", [(AccountCode.CASH, 1), (AccountCode.DEFERRED_REVENUE, -1)])
    assert report()["balanced"] is False


@pytest.mark.django_db
def test_books_report_from_to_limits_to_whole_utc_days():
    moments = {
        "before": (dt.datetime(2020, 1, 9, 23, 59, 59, 999999, tzinfo=UTC), 1),
        "first": (dt.datetime(2020, 1, 10, 0, 0, tzinfo=UTC), 10),
        "last": (dt.datetime(2020, 1, 11, 23, 59, 59, 999999, tzinfo=UTC), 100),
        "after": (dt.datetime(2020, 1, 12, 0, 0, tzinfo=UTC), 1000),
    }
    for name, (moment, cents) in moments.items():
        post(
            f"period:{name}",
            [(AccountCode.CASH, cents), (AccountCode.REVENUE_USAGE, -cents)],
            created_at=moment,
        )

    def cash(*args):
        accounts = report(*args)["accounts"]
        assert accounts["revenue_usage"] == accounts["cash"]
        assert set(accounts) == PINNED_ACCOUNTS
        return accounts["cash"]

    assert cash("--from", "2020-01-10", "--to", "2020-01-11") == 10 + 100
    assert cash("--from", "2020-01-10", "--to", "2020-01-10") == 10
    assert cash("--from", "2020-01-12") == 1000
    assert cash("--to", "2020-01-09") == 1
    assert cash("--from", "2020-01-11") == 100 + 1000
    assert cash() == 1111
    with pytest.raises(CommandError):
        report("--from", "2020-01-11", "--to", "2020-01-10")


# --- check_books -------------------------------------------------------------------------


def check_books() -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("check_books", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_check_books_is_quiet_when_fine_and_names_a_deferred_revenue_mismatch(settings):
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False
    user = UserFactory()
    intent = stripe_events.intent(user=user, package="starter", amount=1999)
    payments.complete_from_intent(intent, cause_ref="evt_paid")
    credits.spend(user=user, amount=4, reason="track_generation", idempotency_key="gen:1")
    out, err = check_books()
    assert "Books OK" in out and err == ""

    # Deferred revenue posted without a lot behind it.
    post("unmatched", [(AccountCode.CASH, 700), (AccountCode.DEFERRED_REVENUE, -700)])
    unreleased = 1999 - release(1999, 30, 4)
    with pytest.raises(CommandError) as caught:
        check_books()
    assert caught.value.returncode == 1
    assert [v.check for v in book_violations()] == ["deferred_revenue_joint"]
    problem = book_violations()[0].problem
    assert f"{unreleased + 700} cents" in problem and f"{unreleased} cents" in problem


@pytest.mark.django_db
def test_check_books_names_a_lot_whose_cost_basis_is_off(settings):
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False
    user = UserFactory()
    intent = stripe_events.intent(user=user, package="starter", amount=1999)
    lot = payments.complete_from_intent(intent, cause_ref="evt_paid").lot
    with connection.cursor() as cursor:  # a release written around the ledger
        cursor.execute(
            "UPDATE credits_lot SET cost_left_cents = cost_left_cents - 1 WHERE id = %s", [lot.pk]
        )
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("check_books", stdout=io.StringIO(), stderr=err)
    assert {v.check for v in book_violations()} == {"deferred_revenue_joint", "lot_cost_basis"}
    assert f"lot {lot.pk}" in err.getvalue()
    assert "lot_cost_basis" in err.getvalue() and "deferred_revenue_joint" in err.getvalue()


# --- Whole cents -------------------------------------------------------------------------


def test_percent_of_rounds_half_up():
    assert money.percent_of(333, 15) == 50  # 49.95
    assert money.percent_of(10, 15) == 2  # 1.5: half up, not to even
    assert money.percent_of(30, 15) == 5  # 4.5
    assert money.percent_of(5, 50) == 3  # 2.5
    assert money.percent_of(1, 50) == 1  # 0.5
    assert money.percent_of(1, 49) == 0  # 0.49
    assert money.percent_of(1999, 100) == 1999
    assert money.percent_of(0, 15) == 0
    for cents in range(0, 2001):
        for percent in range(0, 101):
            exact = Decimal(cents) * percent / 100
            assert money.percent_of(cents, percent) == int(
                exact.quantize(Decimal(1), ROUND_HALF_UP)
            ), (cents, percent)
