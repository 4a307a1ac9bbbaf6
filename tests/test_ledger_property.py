"""Property test: random sequences of ledger operations against a pure-Python model of lots.

Each example freezes the clock (time-machine, no ticking) and runs a list of operations
on two users. After every step the database must agree with the model: the spendable
balance, the cached wallet balance, the sum of the entries, every lot's remainder, the
order in which lots are spent, and each entry's running `balance_after`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import time_machine
from django.db.models import F
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from credits import selectors, services
from credits.exceptions import AlreadyRefunded, InsufficientCredits
from credits.models import CreditLot, EntryKind, LedgerEntry, LedgerEntryLot, LotSource, Wallet
from tests.factories import UserFactory

BASE = dt.datetime(2030, 3, 1, 0, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
USERS = 2  # operations pick user 0 (mostly) or user 1; a staff user only makes adjustments

who = st.sampled_from([0, 0, 0, 1])
index = st.integers(min_value=0, max_value=10_000)
# Expiries on a coarse grid of whole hours, so several lots often fall due together and
# the clock often lands exactly on an expiry.
expiry_hours = st.sampled_from([None, 1, 2, 3, 6, 12, 24, 48])
grant = st.tuples(st.just("grant"), who, st.integers(1, 50), expiry_hours)
spend = st.tuples(st.just("spend"), who, st.integers(1, 12) | st.integers(1, 60))
operations = st.one_of(
    grant,
    grant,
    spend,
    spend,
    st.tuples(st.just("advance"), st.integers(1, 30)),
    st.tuples(st.just("advance_to_expiry"), index),  # exactly onto a lot's expiry
    st.tuples(st.just("expire")),
    st.tuples(st.just("refund"), index),
    st.tuples(
        st.just("adjust"), who, st.integers(1, 50) | st.integers(-12, -1) | st.integers(-60, -1)
    ),
    st.tuples(st.just("void"), who, index),
    st.tuples(st.just("repeat"), index),
)


@dataclass
class Lot:
    pk: int
    amount: int
    remaining: int
    expires_at: dt.datetime | None
    created_at: dt.datetime


@dataclass
class Spend:
    user: int
    entry: LedgerEntry
    taken: dict[int, int]  # lot pk -> credits taken
    refunded: bool = False


@dataclass
class Model:
    now: dt.datetime
    lots: list[list[Lot]] = field(default_factory=lambda: [[] for _ in range(USERS)])
    entries: list[int] = field(default_factory=lambda: [0] * USERS)

    def live(self, u: int) -> list[Lot]:
        """Spendable lots in spend order: soonest expiry first, never last, oldest first."""
        live = [
            lot
            for lot in self.lots[u]
            if lot.remaining > 0 and (lot.expires_at is None or lot.expires_at > self.now)
        ]
        return sorted(
            live,
            key=lambda lot: (
                lot.expires_at is None,
                lot.expires_at or BASE,
                lot.created_at,
                lot.pk,
            ),
        )

    def due(self, u: int) -> list[Lot]:
        return [
            lot
            for lot in self.lots[u]
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= self.now
        ]

    def balance(self, u: int) -> int:
        return sum(lot.remaining for lot in self.live(u))

    def book(self, u: int) -> int:
        """What the entries sum to: includes remainders past their date not yet expired."""
        return sum(lot.remaining for lot in self.lots[u])

    def plan(self, u: int, amount: int) -> dict[int, int] | None:
        if self.balance(u) < amount:
            return None
        taken, left = {}, amount
        for lot in self.live(u):
            take = min(lot.remaining, left)
            taken[lot.pk] = take
            left -= take
            if not left:
                break
        return taken

    def lot(self, pk: int) -> Lot:
        return next(lot for lots in self.lots for lot in lots if lot.pk == pk)


def links_of(entry) -> dict[int, int]:
    return dict(LedgerEntryLot.objects.filter(entry=entry).values_list("lot_id", "amount"))


class LedgerModelTests(TestCase):
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(steps=st.lists(operations, min_size=15, max_size=35))
    def test_ledger_matches_the_lot_model_after_every_step(self, steps):
        with time_machine.travel(BASE, tick=False) as traveller:
            self.traveller = traveller
            self.users = [UserFactory() for _ in range(USERS)]
            self.staff = UserFactory()
            self.staff.is_staff = True
            self.staff.save(update_fields=["is_staff"])
            self.model = Model(now=BASE)
            for u, user in enumerate(self.users):
                signup = CreditLot.objects.get(user_id=user.pk)
                self.model.lots[u].append(Lot(signup.pk, 5, 5, None, BASE))
                self.model.entries[u] = 1
            self.spends: list[Spend] = []
            self.done: list[tuple] = []  # (call, kwargs, result pk) to repeat with the same key
            self.expected_expiries: list[tuple[int, int, int]] = []  # (user, lot pk, amount)
            self.check()

            event(f"steps: {len(steps) // 10 * 10}+")
            for n, step in enumerate(steps):
                getattr(self, f"do_{step[0]}")(f"{step[0]}:{n}", *step[1:])
                self.check()

            assert selectors.ledger_discrepancies() == []

    # --- operations -------------------------------------------------------------------

    def do_grant(self, key, u, amount, hours):
        m = self.model
        expires_at = None if hours is None else m.now + hours * HOUR
        kwargs = dict(
            user=self.users[u],
            amount=amount,
            source=LotSource.ADMIN,
            idempotency_key=key,
            expires_at=expires_at,
        )
        self.expire_in_model(u)  # every change first writes off lots past their date
        lot = services.grant(**kwargs)
        assert (lot.amount, lot.remaining, lot.expires_at) == (amount, amount, expires_at)
        m.lots[u].append(Lot(lot.pk, amount, amount, expires_at, m.now))
        m.entries[u] += 1
        self.assert_latest_entry(
            u, key, kind=EntryKind.GRANT, amount=amount, links={lot.pk: amount}
        )
        self.done.append((services.grant, kwargs, lot.pk))

    def burn(self, key, u, amount, call, kwargs, kind):
        """A spend or a negative adjustment: all or nothing, in spend order."""
        m = self.model
        plan = m.plan(u, amount)
        if plan is None:
            before = self.entry_ids()
            with self.assertRaises(InsufficientCredits) as caught:
                call(**kwargs)
            assert (caught.exception.requested, caught.exception.available) == (
                amount,
                m.balance(u),
            )
            assert self.entry_ids() == before, "a failed spend must change nothing"
            event(f"{kind} refused: insufficient credits")
            return None
        event(f"{kind} succeeded; lots past date written off first: {bool(m.due(u))}")
        # A spend first writes off this user's lots already past their date.
        self.expire_in_model(u)
        entry = call(**kwargs)
        for pk, take in plan.items():
            m.lot(pk).remaining -= take
        m.entries[u] += 1
        self.assert_latest_entry(
            u, key, kind=kind, amount=-amount, links={pk: -take for pk, take in plan.items()}
        )
        self.done.append((call, kwargs, entry.pk))
        return entry, plan

    def do_spend(self, key, u, amount):
        kwargs = dict(user=self.users[u], amount=amount, reason="track", idempotency_key=key)
        result = self.burn(key, u, amount, services.spend, kwargs, EntryKind.SPEND)
        if result is not None:
            entry, plan = result
            self.spends.append(Spend(u, entry, plan))

    def do_adjust(self, key, u, amount):
        kwargs = dict(
            user=self.users[u],
            amount=amount,
            staff_user=self.staff,
            reason="support",
            idempotency_key=key,
        )
        if amount < 0:
            self.burn(key, u, -amount, services.adjust, kwargs, EntryKind.ADJUST)
            return
        self.expire_in_model(u)
        entry = services.adjust(**kwargs)
        (lot_pk,) = links_of(entry)
        lot = CreditLot.objects.get(pk=lot_pk)
        assert (lot.amount, lot.remaining, lot.expires_at) == (amount, amount, None)
        self.model.lots[u].append(Lot(lot.pk, amount, amount, None, self.model.now))
        self.model.entries[u] += 1
        self.assert_latest_entry(
            u, key, kind=EntryKind.ADJUST, amount=amount, links={lot_pk: amount}
        )
        assert (entry.staff_user_id, entry.reason) == (self.staff.pk, "support")
        self.done.append((services.adjust, kwargs, entry.pk))

    def do_advance(self, key, hours):
        self.model.now += hours * HOUR
        self.traveller.move_to(self.model.now, tick=False)

    def do_advance_to_expiry(self, key, i):
        m = self.model
        pending = sorted(
            {
                lot.expires_at
                for lots in m.lots
                for lot in lots
                if lot.remaining and lot.expires_at and lot.expires_at > m.now
            }
        )
        if pending:
            m.now = pending[i % len(pending)]
            self.traveller.move_to(m.now, tick=False)

    def do_expire(self, key):
        m = self.model
        expected = sum(len(m.due(u)) for u in range(USERS))
        for u in range(USERS):
            self.expire_in_model(u)
        assert services.expire_due(now=m.now) == expected
        event(f"expire_due wrote off {min(expected, 3)}{'+' * (expected >= 3)} lots")
        for u, user in enumerate(self.users):
            # Nothing past its date is left, so the ledger and the balance agree.
            assert (
                selectors.balance(user)
                == sum(LedgerEntry.objects.filter(user=user).values_list("amount", flat=True))
                == m.balance(u)
            )

    def do_refund(self, key, i):
        if not self.spends:
            return
        spend = self.spends[i % len(self.spends)]
        m, u = self.model, spend.user
        if spend.refunded:
            before = self.entry_ids()
            with self.assertRaises(AlreadyRefunded):
                services.refund(entry=spend.entry, idempotency_key=key)
            assert self.entry_ids() == before
            return
        self.expire_in_model(u)
        refund = services.refund(entry=spend.entry, idempotency_key=key)
        spend.refunded = True
        # One new lot per lot the spend touched, with that lot's expiry.
        new_lots = list(CreditLot.objects.filter(pk__in=links_of(refund)))

        def refund_expiry(original):
            # The original expiry, or REFUND_GRACE from now if it has passed meanwhile.
            if original is not None and original <= m.now:
                return m.now + services.REFUND_GRACE
            return original or BASE

        expected = sorted(
            (take, refund_expiry(m.lot(pk).expires_at)) for pk, take in spend.taken.items()
        )
        assert sorted((lot.amount, lot.expires_at or BASE) for lot in new_lots) == expected
        for lot in new_lots:
            assert (lot.remaining, lot.source, lot.created_at) == (lot.amount, "refund", m.now)
            m.lots[u].append(Lot(lot.pk, lot.amount, lot.amount, lot.expires_at, m.now))
        m.entries[u] += 1
        self.assert_latest_entry(
            u,
            key,
            kind=EntryKind.REFUND,
            amount=sum(spend.taken.values()),
            links={lot.pk: lot.amount for lot in new_lots},
        )
        assert refund.reverses_id == spend.entry.pk
        self.done.append((services.refund, dict(entry=spend.entry, idempotency_key=key), refund.pk))

    def do_void(self, key, u, i):
        m = self.model
        lot = m.lots[u][i % len(m.lots[u])]
        kwargs = dict(lot=CreditLot.objects.get(pk=lot.pk), idempotency_key=key, reason="refunded")
        if lot.remaining == 0:
            before = self.entry_ids()
            assert services.void_lot(**kwargs) is None
            assert self.entry_ids() == before
            return
        self.expire_in_model(u)
        if lot.remaining == 0:  # it was past its date: written off, nothing to void
            assert services.void_lot(**kwargs) is None
            return
        entry = services.void_lot(**kwargs)
        voided, lot.remaining = lot.remaining, 0
        m.entries[u] += 1
        self.assert_latest_entry(
            u, key, kind=EntryKind.VOID, amount=-voided, links={lot.pk: -voided}
        )
        self.done.append((services.void_lot, kwargs, entry.pk))

    def do_repeat(self, key, i):
        """The same idempotency key again changes nothing and returns the earlier result."""
        if not self.done:
            return
        call, kwargs, earlier = self.done[i % len(self.done)]
        before = self.entry_ids()
        assert call(**kwargs).pk == earlier
        assert self.entry_ids() == before

    # --- checks -----------------------------------------------------------------------

    def expire_in_model(self, u):
        """Write off this user's due lots in the model; remember the entries expected."""
        for lot in self.model.due(u):
            self.expected_expiries.append((u, lot.pk, lot.remaining))
            lot.remaining = 0
            self.model.entries[u] += 1

    def entry_ids(self):
        return list(LedgerEntry.objects.order_by("id").values_list("id", flat=True))

    def assert_latest_entry(self, u, key, *, kind, amount, links):
        entry = LedgerEntry.objects.get(idempotency_key=key)
        assert entry.user_id == self.users[u].pk
        assert (entry.kind, entry.amount) == (kind, amount)
        # Every change writes off lots past their date first, so balance_after is the
        # spendable balance (the model's book after expire_in_model).
        assert entry.balance_after == self.model.book(u)
        assert links_of(entry) == links, f"{kind} took from the wrong lots"

    def check(self):
        m = self.model
        if self.expected_expiries:
            expiries = {
                entry.idempotency_key: (entry.user_id, entry.kind, entry.amount, entry.lot_id)
                for entry in LedgerEntry.objects.filter(
                    idempotency_key__in=[f"expire:lot:{pk}" for _, pk, _ in self.expected_expiries]
                ).annotate(lot_id=F("lot_links__lot_id"))
            }
            assert expiries == {
                f"expire:lot:{pk}": (self.users[u].pk, "expire", -amount, pk)
                for u, pk, amount in self.expected_expiries
            }
            self.expected_expiries.clear()

        user_ids = [user.pk for user in self.users]
        entries = {pk: [] for pk in user_ids}
        for user_id, amount, balance_after in (
            LedgerEntry.objects.filter(user_id__in=user_ids)
            .order_by("id")
            .values_list("user_id", "amount", "balance_after")
        ):
            entries[user_id].append((amount, balance_after))
        lots = {pk: {} for pk in user_ids}
        for user_id, pk, remaining in CreditLot.objects.filter(user_id__in=user_ids).values_list(
            "user_id", "pk", "remaining"
        ):
            lots[user_id][pk] = remaining
        wallets = dict(
            Wallet.objects.filter(user_id__in=user_ids).values_list("user_id", "balance")
        )

        for u, user in enumerate(self.users):
            assert selectors.balance(user) == m.balance(u)
            assert len(entries[user.pk]) == m.entries[u]
            running = 0
            for amount, balance_after in entries[user.pk]:
                running += amount
                assert balance_after == running, "balance_after must be the running total"
            assert wallets[user.pk] == running == m.book(u)
            assert lots[user.pk] == {lot.pk: lot.remaining for lot in m.lots[u]}
            assert min(lots[user.pk].values()) >= 0
            assert list(selectors.live_lots(user).values_list("pk", flat=True)) == [
                lot.pk for lot in m.live(u)
            ]
