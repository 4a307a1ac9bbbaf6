"""Concurrent changes to the ledger, with real threads and real database connections.

Every thread has its own connection (Django opens one per thread) and closes it when
done. A statement timeout turns a hang into an error instead of a stuck test run.
"""

import datetime as dt
import random
import threading
import time
import uuid

import pytest
from django.db import connection, transaction
from django.utils import timezone

from credits import selectors, services
from credits.exceptions import AlreadyRefunded, InsufficientCredits
from credits.models import CreditLot, CreditPackage, EntryKind, LedgerEntry, LotSource, Wallet
from tests.factories import UserFactory
from tests.threads import run_threads

JOIN_TIMEOUT = 30  # seconds; a deadlock or lost wake-up shows up as a thread still alive

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def signup_package(transactional_db):
    """Transactional tests flush the database afterwards, seeded packages included."""
    CreditPackage.objects.get_or_create(
        slug="free", defaults={"name": "Free", "credits": 5, "price_cents": 0}
    )


def grant(user, amount, expires_at=None):
    return services.grant(
        user=user,
        amount=amount,
        source=LotSource.ADMIN,
        idempotency_key=f"grant:{uuid.uuid4()}",
        expires_at=expires_at,
    )


def entries_sum(user):
    return sum(LedgerEntry.objects.filter(user_id=user.pk).values_list("amount", flat=True))


def assert_balance_after_is_a_running_total(user):
    running = 0
    for amount, balance_after in (
        LedgerEntry.objects.filter(user_id=user.pk)
        .order_by("id")
        .values_list("amount", "balance_after")
    ):
        running += amount
        assert balance_after == running
    assert Wallet.objects.get(user_id=user.pk).balance == running


def test_twenty_concurrent_spends_of_one_credit_from_seven_succeed_exactly_seven_times():
    user = UserFactory()
    grant(user, 2)
    assert selectors.balance(user) == 7

    def spend_one(i):
        return lambda: services.spend(
            user=user, amount=1, reason="track", idempotency_key=f"spend:{i}"
        )

    outcomes = run_threads([spend_one(i) for i in range(20)])

    successes = [result for result, exc in outcomes if exc is None]
    failures = [exc for _, exc in outcomes if exc is not None]
    assert len(successes) == 7
    assert len(failures) == 13
    assert all(isinstance(exc, InsufficientCredits) for exc in failures), failures
    assert selectors.balance(user) == 0 == Wallet.objects.get(user_id=user.pk).balance
    assert LedgerEntry.objects.filter(user_id=user.pk, kind=EntryKind.SPEND).count() == 7
    assert sorted(e.balance_after for e in successes) == list(range(7))
    assert set(CreditLot.objects.filter(user_id=user.pk).values_list("remaining", flat=True)) == {0}
    assert_balance_after_is_a_running_total(user)
    assert selectors.ledger_discrepancies() == []


def test_one_idempotency_key_from_ten_threads_spends_once():
    user = UserFactory()

    def spend_same():
        return services.spend(user=user, amount=3, reason="track", idempotency_key="spend:same")

    outcomes = run_threads([spend_same] * 10)

    assert [exc for _, exc in outcomes] == [None] * 10
    ids = {result.pk for result, _ in outcomes}
    assert len(ids) == 1
    assert LedgerEntry.objects.filter(idempotency_key="spend:same").count() == 1
    assert LedgerEntry.objects.filter(user_id=user.pk, kind=EntryKind.SPEND).count() == 1
    assert selectors.balance(user) == 2
    assert selectors.ledger_discrepancies() == []


def test_one_grant_key_from_eight_threads_adds_one_lot():
    user = UserFactory()

    def grant_same():
        return services.grant(
            user=user, amount=30, source=LotSource.PACKAGE, idempotency_key="grant:pi_123"
        )

    outcomes = run_threads([grant_same] * 8)

    assert [exc for _, exc in outcomes] == [None] * 8
    assert len({lot.pk for lot, _ in outcomes}) == 1
    assert CreditLot.objects.filter(grant_key="grant:pi_123").count() == 1
    assert LedgerEntry.objects.filter(idempotency_key="grant:pi_123").count() == 1
    assert selectors.balance(user) == 35
    assert selectors.ledger_discrepancies() == []


def test_concurrent_refunds_of_one_spend_give_it_back_once():
    user = UserFactory()
    spent = services.spend(user=user, amount=4, reason="track", idempotency_key="spend:r")

    def refund(i):
        return lambda: services.refund(entry=spent, idempotency_key=f"refund:{i}")

    outcomes = run_threads([refund(i) for i in range(6)])

    assert sum(exc is None for _, exc in outcomes) == 1
    assert all(isinstance(exc, AlreadyRefunded) for _, exc in outcomes if exc is not None)
    assert selectors.balance(user) == 5
    assert selectors.ledger_discrepancies() == []


def test_mixed_grants_spends_and_expiry_on_several_users_neither_deadlock_nor_drift():
    users = [UserFactory() for _ in range(4)]
    start = timezone.now()
    for user in users:
        for hours in (-2, -1, 1, 2, 3):  # some lots already due, some not
            grant(user, 3, expires_at=start + dt.timedelta(hours=hours))

    def worker(seed):
        rng = random.Random(seed)

        def work():
            done = 0
            for n in range(12):
                user = rng.choice(users)
                op = rng.choice(["grant", "spend", "spend", "expire", "refund"])
                try:
                    if op == "grant":
                        hours = rng.choice([None, -1, 1, 5])
                        expiry = hours and timezone.now() + dt.timedelta(hours=hours)
                        grant(user, rng.randint(1, 4), expiry)
                    elif op == "spend":
                        services.spend(
                            user=user,
                            amount=rng.randint(1, 6),
                            reason="track",
                            idempotency_key=f"spend:{seed}:{n}",
                        )
                    elif op == "expire":
                        services.expire_due()
                    else:
                        spent = (
                            LedgerEntry.objects.filter(kind=EntryKind.SPEND, reversed_by=None)
                            .order_by("?")
                            .first()
                        )
                        if spent is not None:
                            services.refund(entry=spent, idempotency_key=f"refund:{spent.pk}")
                except (InsufficientCredits, AlreadyRefunded):
                    pass
                done += 1
            return done

        return work

    outcomes = run_threads([worker(seed) for seed in range(16)])

    assert [exc for _, exc in outcomes] == [None] * 16
    assert [result for result, _ in outcomes] == [12] * 16
    services.expire_due()
    assert selectors.ledger_discrepancies() == []
    for user in users:
        assert_balance_after_is_a_running_total(user)
        assert selectors.balance(user) == entries_sum(user)
        assert not CreditLot.objects.filter(
            user_id=user.pk, remaining__gt=0, expires_at__lte=timezone.now()
        ).exists()


def test_expire_due_from_three_threads_expires_each_due_lot_exactly_once():
    now = timezone.now()
    users = [UserFactory() for _ in range(3)]
    due, not_due = [], []
    for user in users:
        for i in range(50):
            # Not yet due when granted (a grant writes off its user's due lots first).
            due.append(grant(user, 1 + i % 3, expires_at=now + dt.timedelta(minutes=i + 1)))
        not_due.append(grant(user, 7, expires_at=now + dt.timedelta(days=1)))
    later = now + dt.timedelta(hours=2)

    outcomes = run_threads([lambda: services.expire_due(now=later)] * 3)

    assert [exc for _, exc in outcomes] == [None] * 3
    assert sum(result for result, _ in outcomes) == len(due) == 150
    expiries = LedgerEntry.objects.filter(kind=EntryKind.EXPIRE)
    assert expiries.count() == 150
    assert sorted(expiries.values_list("idempotency_key", flat=True)) == sorted(
        f"expire:lot:{lot.pk}" for lot in due
    )
    for entry in expiries.prefetch_related("lot_links"):
        (link,) = entry.lot_links.all()
        assert entry.idempotency_key == f"expire:lot:{link.lot_id}"
        assert link.amount == entry.amount
    lots = CreditLot.objects.in_bulk([lot.pk for lot in due + not_due])
    assert {lots[lot.pk].remaining for lot in due} == {0}
    assert [lots[lot.pk].remaining for lot in not_due] == [7, 7, 7]
    for user in users:
        assert selectors.balance(user) == 12 == entries_sum(user)
        assert_balance_after_is_a_running_total(user)
    assert selectors.ledger_discrepancies() == []


def waiting_on_locks():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_expiry_waits_for_a_spend_in_flight_and_expires_only_what_it_left():
    user = UserFactory()
    signup_lot = CreditLot.objects.get(user_id=user.pk)
    now = timezone.now()
    expiring = grant(user, 10, expires_at=now + dt.timedelta(hours=1))
    later = grant(user, 4, expires_at=now + dt.timedelta(days=5))
    spent, release = threading.Event(), threading.Event()

    def spend_and_hold():
        with transaction.atomic():
            entry = services.spend(
                user=user, amount=3, reason="track", idempotency_key="spend:inflight"
            )
            spent.set()
            assert release.wait(15), "never released"
        return entry

    def expire_after_spend():
        assert spent.wait(15), "spend never happened"
        return services.expire_due(now=now + dt.timedelta(hours=2))

    results = {}

    def run():
        results["outcomes"] = run_threads([spend_and_hold, expire_after_spend])

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    assert spent.wait(10)
    deadline = time.monotonic() + 10
    while waiting_on_locks() < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert waiting_on_locks() == 1, "expire_due should be blocked on the wallet lock"
    assert not LedgerEntry.objects.filter(kind=EntryKind.EXPIRE).exists()
    release.set()
    runner.join(JOIN_TIMEOUT)
    assert not runner.is_alive()

    (spend_entry, spend_exc), (expired_count, expire_exc) = results["outcomes"]
    assert spend_exc is None and expire_exc is None
    assert expired_count == 1
    assert {link.lot_id: link.amount for link in spend_entry.lot_links.all()} == {expiring.pk: -3}
    expiry = LedgerEntry.objects.get(idempotency_key=f"expire:lot:{expiring.pk}")
    assert expiry.amount == -7
    assert expiry.id > spend_entry.id
    assert [
        CreditLot.objects.get(pk=lot.pk).remaining for lot in (expiring, later, signup_lot)
    ] == [0, 4, 5]
    assert selectors.balance(user) == 9 == entries_sum(user)
    assert_balance_after_is_a_running_total(user)
    assert selectors.ledger_discrepancies() == []


def test_expire_due_with_two_workers_splits_users_and_expires_each_lot_once():
    now = timezone.now()
    users = [UserFactory() for _ in range(7)]
    due = [
        grant(user, 2, expires_at=now + dt.timedelta(minutes=n + 1))
        for user in users
        for n in range(4)
    ]
    later = now + dt.timedelta(hours=1)

    # Two runs at once, each itself on two connections: four workers, no deadlock.
    outcomes = run_threads([lambda: services.expire_due(now=later, workers=2)] * 2)

    assert [exc for _, exc in outcomes] == [None] * 2
    assert sum(result for result, _ in outcomes) == len(due) == 28
    assert LedgerEntry.objects.filter(kind=EntryKind.EXPIRE).count() == 28
    for user in users:
        assert selectors.balance(user) == 5 == entries_sum(user)
        assert_balance_after_is_a_running_total(user)
    assert selectors.ledger_discrepancies() == []
