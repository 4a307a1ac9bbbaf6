"""Property test: random sequences of money-moving credit operations against a model.

Each example freezes the clock (time-machine, no ticking) and runs a list of
operations on two users: package purchases paid by card (a random price, through
payments.services.complete_from_intent, so the lot, its cost basis, the cash / deferred
revenue posting and the card fee are all the app's own), free grants, spends, credits
given back after a failed generation, time passing and expire_due, package refunds
(partial, full, beyond what is left, a refund id repeated: through
payments.services.apply_refund, the path every refund takes), voids and staff
adjustments (+/-).

The model keeps its own lots (remaining, cost, unreleased cost, expiry, which payment
they belong to) and its own account balances, and computes every release itself:
burning k of the r credits left in a lot releases floor(cost_left x k / r) cents, the
last credit takes the rest. After EVERY step the database must agree with it, and:

- every journal transaction has lines and they sum to zero;
- deferred revenue equals the lots' unreleased cost;
- every lot has 0 <= cost_left <= cost, its links' cost_cents sum to cost_left (its
  credits to remaining), and an empty lot has released all of its cost;
- books.selectors.book_violations() finds nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import time_machine
from django.db import connection
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from books.models import JournalTransaction
from books.selectors import account_balances, book_violations
from credits import services
from credits.exceptions import AlreadyRefunded, InsufficientCredits
from credits.models import (
    CreditLot,
    CreditPackage,
    EntryKind,
    LedgerEntry,
    LedgerEntryLot,
    LotSource,
)
from payments import services as payments
from payments.models import Payment, PaymentStatus, Refund
from tests import stripe_events
from tests.factories import UserFactory

BASE = dt.datetime(2030, 3, 1, 0, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
GRACE = dt.timedelta(days=7)  # DESIGN.md: a give-back into an expired lot gets 7 days
USERS = 2
ACCOUNTS = [
    "cash",
    "processor_fees",
    "deferred_revenue",
    "revenue_usage",
    "revenue_breakage",
    "revenue_subscriptions",
    "revenue_platform_fees",
    "refunds",
    "artist_payable",
]
# Packages made for the test: (slug, credits, days until the lot expires or None).
PACKAGES = [("prop-day", 7, 1), ("prop-3day", 30, 3), ("prop-never", 13, None)]

who = st.sampled_from([0, 0, 0, 1])
index = st.integers(min_value=0, max_value=10_000)
# Mostly real prices (hypothesis otherwise favours tiny ones, whose burns release
# nothing), sometimes awkward ones: a cent, fewer cents than credits, a Starter.
price = st.one_of(
    st.integers(300, 6000),
    st.integers(300, 6000),
    st.sampled_from([1, 2, 7, 29, 1999, 5900]),
)
expiry_hours = st.sampled_from([None, 1, 6, 24, 48])
buy = st.tuples(st.just("buy"), who, st.integers(0, len(PACKAGES) - 1), price)
spend = st.tuples(st.just("spend"), who, st.integers(1, 6) | st.integers(1, 40))
giveback = st.tuples(st.just("giveback"), index)
refund = st.tuples(
    st.just("refund"),
    index,
    st.sampled_from(["partial", "partial", "full", "beyond"]),
    st.integers(1, 99),
    st.booleans(),  # prefer a payment whose credits were partly given back
)
# Repeated branches weigh the draw towards what moves money: purchases, spends,
# give-backs into a package's family and refunds voiding from it.
operations = st.one_of(
    buy,
    buy,
    buy,
    spend,
    spend,
    spend,
    giveback,
    giveback,
    refund,
    refund,
    refund,
    st.tuples(st.just("gift"), who, st.integers(1, 20), expiry_hours),
    st.tuples(st.just("advance"), st.sampled_from([1, 6, 12, 24, 25, 49, 73])),
    st.tuples(st.just("advance_to_expiry"), index),
    st.tuples(st.just("expire")),
    st.tuples(st.just("repeat_refund"), index),
    st.tuples(st.just("void"), who, index),
    st.tuples(st.just("adjust"), who, st.integers(1, 20) | st.integers(-15, -1)),
)


def release(cost_left: int, remaining: int, burned: int) -> int:
    """The model's own rule: floor(cost_left x burned / remaining); the last takes the rest."""
    assert 0 < burned <= remaining
    if burned == remaining:
        return cost_left
    return math.floor(Fraction(cost_left * burned, remaining))


def card_fee(cents: int) -> int:
    """Stripe's standard fee on the test gateway: 2.9 % rounded half up, plus 30 cents."""
    return int((Decimal(cents) * Decimal("0.029")).quantize(Decimal(1), ROUND_HALF_UP)) + 30


@dataclass
class Lot:
    pk: int
    user: int
    amount: int
    remaining: int
    cost: int
    cost_left: int
    expires_at: dt.datetime | None
    created_at: dt.datetime
    root: int  # the lot whose payment these credits belong to (itself unless given back)


@dataclass
class Purchase:
    payment_pk: int
    user: int
    lot_pk: int
    credits: int
    amount: int
    refunded: int = 0
    voided: int = 0
    shortfall: int = 0
    status: str = PaymentStatus.SUCCEEDED
    refund_ids: list[str] = field(default_factory=list)


@dataclass
class Spent:
    user: int
    entry: LedgerEntry
    links: dict[int, tuple[int, int]]  # lot pk -> (credits taken, cost released)
    given_back: bool = False


@dataclass
class Model:
    now: dt.datetime
    lots: dict[int, Lot] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACCOUNTS, 0))
    purchases: list[Purchase] = field(default_factory=list)
    spends: list[Spent] = field(default_factory=list)

    @staticmethod
    def order(lots):
        """Spend order: soonest expiry first, never-expiring last, oldest first."""
        return sorted(
            lots,
            key=lambda lot: (
                lot.expires_at is None,
                lot.expires_at or BASE,
                lot.created_at,
                lot.pk,
            ),
        )

    def user_lots(self, u: int) -> list[Lot]:
        return [lot for lot in self.lots.values() if lot.user == u]

    def live(self, u: int) -> list[Lot]:
        return self.order(
            lot
            for lot in self.user_lots(u)
            if lot.remaining > 0 and (lot.expires_at is None or lot.expires_at > self.now)
        )

    def due(self, u: int) -> list[Lot]:
        return [
            lot
            for lot in self.user_lots(u)
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= self.now
        ]

    def balance(self, u: int) -> int:
        return sum(lot.remaining for lot in self.live(u))

    def move(self, debit: str, credit: str, cents: int) -> None:
        """A posting in natural sign: `debit` is debited, `credit` credited."""
        sign = {"cash": 1, "processor_fees": 1, "refunds": 1}
        self.accounts[debit] += cents * sign.get(debit, -1)
        self.accounts[credit] -= cents * sign.get(credit, -1)

    def write_off(self, u: int) -> int:
        """Expire this user's lots past their date; the cost left goes to breakage."""
        due = self.due(u)
        for lot in due:
            self.move("deferred_revenue", "revenue_breakage", lot.cost_left)
            lot.remaining = lot.cost_left = 0
        return len(due)

    def burn(self, lots, amount: int) -> dict[int, tuple[int, int]]:
        """Take up to `amount` from `lots` in their order; return {pk: (taken, released)}."""
        taken, left = {}, amount
        for lot in lots:
            if not left:
                break
            take = min(lot.remaining, left)
            released = release(lot.cost_left, lot.remaining, take)
            lot.remaining -= take
            lot.cost_left -= released
            taken[lot.pk] = (take, released)
            left -= take
        return taken


def sql(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def entry_links(entry_pk: int) -> dict[int, tuple[int, int]]:
    return {
        lot: (amount, cost)
        for lot, amount, cost in LedgerEntryLot.objects.filter(entry_id=entry_pk).values_list(
            "lot_id", "amount", "cost_cents"
        )
    }


def lines(posting: JournalTransaction) -> dict[str, int]:
    return dict(posting.lines.values_list("account__key", "amount_cents"))


def posted(entry: LedgerEntry) -> dict[str, int]:
    """The lines the books hold for a ledger entry ({} when nothing was posted)."""
    postings = list(JournalTransaction.objects.filter(ledger_entry_id=entry.pk))
    assert len(postings) <= 1, "one ledger entry, at most one posting"
    return lines(postings[0]) if postings else {}


class BooksModelTests(TestCase):
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(steps=st.lists(operations, min_size=8, max_size=20))
    # Always run too: the Starter refunded $5 + $5 + the rest with credits spent and
    # given back in between; a give-back voided by a full refund; a refund whose void
    # first writes off the package's lot that has just expired.
    @example(
        steps=[
            ("buy", 0, 1, 1999),
            ("spend", 0, 3),
            ("refund", 0, "partial", 25, False),
            ("giveback", 0),
            ("refund", 0, "partial", 34, False),
            ("spend", 0, 10),
            ("refund", 0, "full", 1, False),
            ("repeat_refund", 1),
        ]
    )
    @example(
        steps=[
            ("buy", 0, 0, 700),
            ("spend", 0, 6),
            ("giveback", 0),
            ("spend", 0, 2),
            ("refund", 0, "beyond", 10, True),
            ("expire",),
        ]
    )
    @example(
        steps=[
            ("buy", 0, 0, 29),
            ("buy", 0, 2, 5900),
            ("spend", 0, 3),
            ("advance", 25),
            ("refund", 0, "partial", 50, False),
            ("giveback", 0),
            ("refund", 1, "full", 1, False),
            ("adjust", 0, -4),
            ("void", 0, 1),
        ]
    )
    def test_books_match_the_cost_basis_model_after_every_step(self, steps):
        with time_machine.travel(BASE, tick=False) as traveller:
            self.traveller = traveller
            self.packages = [
                CreditPackage.objects.get_or_create(
                    slug=slug,
                    defaults={
                        "name": slug,
                        "credits": credits,
                        "price_cents": 1000,
                        "expires_after_days": days,
                    },
                )[0]
                for slug, credits, days in PACKAGES
            ]
            self.users = [UserFactory() for _ in range(USERS)]
            self.staff = UserFactory()
            self.staff.is_staff = True
            self.staff.save(update_fields=["is_staff"])
            self.model = Model(now=BASE)
            for u, user in [*enumerate(self.users), (-1, self.staff)]:  # staff: never used
                gift = CreditLot.objects.get(user_id=user.pk)  # the 5 free credits
                self.model.lots[gift.pk] = Lot(gift.pk, u, 5, 5, 0, 0, None, BASE, gift.pk)
            self.check()

            event(f"steps: {len(steps) // 10 * 10}+")
            for n, step in enumerate(steps):
                getattr(self, f"do_{step[0]}")(f"{step[0]}-{n}", *step[1:])
                self.check()

    # --- operations -------------------------------------------------------------------

    def do_buy(self, key, u, package_index, amount):
        m = self.model
        package = self.packages[package_index]
        intent = stripe_events.intent(
            user=self.users[u], package=package.slug, amount=amount, intent_id=f"pi_{key}"
        )
        m.write_off(u)  # the grant writes off the user's lots past their date first
        payment = payments.complete_from_intent(intent, cause_ref=f"evt_{key}")
        assert payment.status == PaymentStatus.SUCCEEDED
        lot = CreditLot.objects.get(pk=payment.lot_id)
        days = package.expires_after_days
        expires = None if days is None else m.now + dt.timedelta(days=days)
        assert (lot.amount, lot.remaining, lot.cost_cents, lot.cost_left_cents) == (
            package.credits,
            package.credits,
            amount,
            amount,
        )
        assert (lot.expires_at, lot.package_id, lot.origin_lot_id) == (expires, package.pk, None)
        m.lots[lot.pk] = Lot(
            lot.pk, u, package.credits, package.credits, amount, amount, expires, m.now, lot.pk
        )
        fee = card_fee(amount)
        m.accounts["cash"] += amount - fee
        m.accounts["processor_fees"] += fee
        m.accounts["deferred_revenue"] += amount
        assert payment.fee_cents == fee
        m.purchases.append(Purchase(payment.pk, u, lot.pk, package.credits, amount))

    def do_gift(self, key, u, amount, hours):
        m = self.model
        expires = None if hours is None else m.now + hours * HOUR
        m.write_off(u)
        lot = services.grant(
            user=self.users[u],
            amount=amount,
            source=LotSource.ADMIN,
            idempotency_key=key,
            expires_at=expires,
        )
        assert (lot.cost_cents, lot.cost_left_cents) == (0, 0)
        m.lots[lot.pk] = Lot(lot.pk, u, amount, amount, 0, 0, expires, m.now, lot.pk)
        entry = self.assert_entry(key, {lot.pk: (amount, 0)})
        assert not entry.journal_transactions.exists(), "a free lot posts nothing"

    def _burn(self, key, u, amount, call, kwargs, *, to):
        """A spend or a negative adjustment: all or nothing, in spend order."""
        m = self.model
        if m.balance(u) < amount:
            before = self.counts()
            with self.assertRaises(InsufficientCredits):
                call(**kwargs)
            assert self.counts() == before, "a refused burn must change nothing"
            event(f"{to}: refused")
            return None
        m.write_off(u)
        links = m.burn(m.live(u), amount)
        entry = call(**kwargs)
        released = sum(cost for _, cost in links.values())
        m.move("deferred_revenue", to, released)
        self.assert_entry(key, {pk: (-take, -cost) for pk, (take, cost) in links.items()})
        assert entry.released_cents == released
        assert posted(entry) == ({"deferred_revenue": released, to: -released} if released else {})
        event(f"{to}: released {'some' if released else 'nothing'}")
        return entry, links

    def do_spend(self, key, u, amount):
        kwargs = dict(user=self.users[u], amount=amount, reason="track", idempotency_key=key)
        done = self._burn(key, u, amount, services.spend, kwargs, to="revenue_usage")
        if done is not None:
            self.model.spends.append(Spent(u, *done))

    def do_adjust(self, key, u, amount):
        m = self.model
        kwargs = dict(
            user=self.users[u],
            amount=amount,
            staff_user=self.staff,
            reason="support",
            idempotency_key=key,
        )
        if amount < 0:
            self._burn(key, u, -amount, services.adjust, kwargs, to="revenue_breakage")
            return
        m.write_off(u)
        entry = services.adjust(**kwargs)
        ((lot_pk, (credits, cost)),) = entry_links(entry.pk).items()
        lot = CreditLot.objects.get(pk=lot_pk)
        assert (credits, cost, lot.cost_cents, lot.expires_at) == (amount, 0, 0, None)
        assert posted(entry) == {}
        m.lots[lot_pk] = Lot(lot_pk, u, amount, amount, 0, 0, None, m.now, lot_pk)

    def do_giveback(self, key, i):
        """A failed generation: the credits of a spend come back, with their cost."""
        m = self.model
        if not m.spends:
            return
        spent = m.spends[i % len(m.spends)]
        if spent.given_back:
            before = self.counts()
            with self.assertRaises(AlreadyRefunded):
                services.refund(entry=spent.entry, idempotency_key=key)
            assert self.counts() == before
            return
        m.write_off(spent.user)
        entry = services.refund(entry=spent.entry, idempotency_key=key)
        spent.given_back = True
        expected_links, returned = {}, 0
        for origin_pk, (take, cost) in spent.links.items():
            origin = m.lots[origin_pk]
            lot = CreditLot.objects.get(grant_key=f"{key}:lot:{origin_pk}")
            expires = origin.expires_at
            if expires is not None and expires <= m.now:
                expires = m.now + GRACE
            root = CreditLot.objects.get(pk=origin.root)
            assert (lot.amount, lot.remaining, lot.cost_cents, lot.cost_left_cents) == (
                take,
                take,
                cost,
                cost,
            )
            assert (lot.expires_at, lot.package_id) == (expires, root.package_id)
            assert lot.origin_lot_id == origin.root, "given back into the lot's payment family"
            m.lots[lot.pk] = Lot(
                lot.pk, spent.user, take, take, cost, cost, expires, m.now, origin.root
            )
            expected_links[lot.pk] = (take, cost)
            returned += cost
        self.assert_entry(key, expected_links)
        assert entry.returned_cents == returned
        assert posted(entry) == (
            {"revenue_usage": returned, "deferred_revenue": -returned} if returned else {}
        )
        m.move("revenue_usage", "deferred_revenue", returned)
        event(f"giveback of {'some' if returned else 'no'} cost")

    def do_advance(self, key, hours):
        self.model.now += hours * HOUR
        self.traveller.move_to(self.model.now, tick=False)

    def do_advance_to_expiry(self, key, i):
        m = self.model
        pending = sorted(
            {
                lot.expires_at
                for lot in m.lots.values()
                if lot.remaining and lot.expires_at and lot.expires_at > m.now
            }
        )
        if pending:
            m.now = pending[i % len(pending)]
            self.traveller.move_to(m.now, tick=False)

    def do_expire(self, key):
        m = self.model
        expected = sum(m.write_off(u) for u in range(USERS))
        assert services.expire_due(now=m.now) == expected
        event(f"expire_due: {min(expected, 2)}{'+' if expected > 2 else ''} lots")

    def do_void(self, key, u, i):
        m = self.model
        lots = sorted(m.user_lots(u), key=lambda lot: lot.pk)
        lot = lots[i % len(lots)]
        kwargs = dict(lot=CreditLot.objects.get(pk=lot.pk), idempotency_key=key, reason="fraud")
        if lot.remaining == 0:
            before = self.counts()
            assert services.void_lot(**kwargs) is None
            assert self.counts() == before
            return
        m.write_off(u)
        if lot.remaining == 0:  # it was past its date: written off, nothing to void
            assert services.void_lot(**kwargs) is None
            return
        links = m.burn([lot], lot.remaining)
        entry = services.void_lot(**kwargs)
        (take, released) = links[lot.pk]
        assert entry.released_cents == released
        m.move("deferred_revenue", "revenue_breakage", released)
        self.assert_entry(key, {lot.pk: (-take, -released)})
        assert posted(entry) == (
            {"deferred_revenue": released, "revenue_breakage": -released} if released else {}
        )

    def do_refund(self, key, i, kind, percent, prefer_given_back):
        """One Stripe refund of a package payment, applied as every refund is."""
        m = self.model
        if not m.purchases:
            return
        candidates = m.purchases
        if prefer_given_back:
            given_back = {lot.root for lot in m.lots.values() if lot.root != lot.pk}
            candidates = [p for p in m.purchases if p.lot_pk in given_back] or candidates
        p = candidates[i % len(candidates)]
        left = p.amount - p.refunded
        requested = {
            "full": left,
            "partial": max(1, left * percent // 100),
            "beyond": left + percent,
        }[kind]
        if kind == "full" and left == 0:
            requested = p.amount
        refund_id = f"re_{key}"
        payment = Payment.objects.get(pk=p.payment_pk)
        if left == 0:
            before = self.counts()
            payments.apply_refund(
                payment=payment, refund_id=refund_id, amount_cents=requested, cause_ref=key
            )
            assert self.counts() == before, "a refund of a refunded payment changes nothing"
            assert not Refund.objects.filter(stripe_refund_id=refund_id).exists()
            return
        refunded = min(requested, left)
        p.refunded += refunded
        # DESIGN.md: after refunds totalling T of the amount A, ceil(credits x T / A) of
        # the package's credits are void in all (never more than are unused).
        target = min(math.ceil(Fraction(p.credits * p.refunded, p.amount)), p.credits)
        wanted = target - p.voided
        links = {}
        family = [lot for lot in m.lots.values() if lot.root == p.lot_pk]
        if wanted > 0 and any(lot.remaining > 0 for lot in family):
            m.write_off(p.user)
            links = m.burn(m.order(lot for lot in family if lot.remaining > 0), wanted)
        released = sum(cost for _, cost in links.values())
        p.voided += sum(take for take, _ in links.values())
        if any(m.lots[pk].root != pk for pk in links):
            event("refund voided credits given back into the package's family")
        p.shortfall = max(0, target - p.voided)
        p.status = (
            PaymentStatus.REFUNDED if p.refunded >= p.amount else PaymentStatus.PARTIALLY_REFUNDED
        )
        p.refund_ids.append(refund_id)
        last_entry, last_posting = self.last_ids()

        payments.apply_refund(
            payment=payment, refund_id=refund_id, amount_cents=requested, cause_ref=key
        )

        # The refund that completes it also books the card fee Stripe keeps as a cost
        # of the refund (DESIGN.md: "a card fee Stripe keeps ... goes to refunds").
        kept = card_fee(p.amount) if p.refunded >= p.amount else 0
        m.accounts["deferred_revenue"] -= released
        m.accounts["refunds"] += refunded - released + kept
        m.accounts["processor_fees"] -= kept
        m.accounts["cash"] -= refunded
        (posting,) = JournalTransaction.objects.filter(pk__gt=last_posting, payment_id=payment.pk)
        expected = {
            "deferred_revenue": released,
            "refunds": refunded - released + kept,
            "processor_fees": -kept,
            "cash": -refunded,
        }
        assert lines(posting) == {k: v for k, v in expected.items() if v}
        voids = LedgerEntry.objects.filter(pk__gt=last_entry, kind=EntryKind.VOID)
        if links:
            (void,) = voids
            assert entry_links(void.pk) == {
                pk: (-take, -cost) for pk, (take, cost) in links.items()
            }
            assert not void.journal_transactions.exists(), "the refund posts the release"
        else:
            assert not voids.exists()
        assert Refund.objects.get(stripe_refund_id=refund_id).amount_cents == refunded
        event(f"refund {kind}: {'voided' if links else 'voided nothing'}")

    def do_repeat_refund(self, key, i):
        """The same Stripe refund id again: nothing changes."""
        done = [(p, r) for p in self.model.purchases for r in p.refund_ids]
        if not done:
            return
        p, refund_id = done[i % len(done)]
        before = self.counts()
        payments.apply_refund(
            payment=Payment.objects.get(pk=p.payment_pk),
            refund_id=refund_id,
            amount_cents=p.amount,
            cause_ref=key,
        )
        assert self.counts() == before

    # --- checks -----------------------------------------------------------------------

    def last_ids(self):
        return (
            LedgerEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
            JournalTransaction.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
        )

    def counts(self):
        """What a change that must change nothing could have changed."""
        return (
            sql("SELECT count(*) FROM credits_ledger_entry"),
            sql("SELECT count(*) FROM books_journal_transaction"),
            sql("SELECT count(*) FROM payments_refund"),
            sql("SELECT id, remaining, cost_left_cents FROM credits_lot ORDER BY id"),
            sql(
                "SELECT id, status, refunded_cents, refund_shortfall_credits"
                " FROM payments_payment ORDER BY id"
            ),
        )

    def assert_entry(self, key, links):
        entry = LedgerEntry.objects.get(idempotency_key=key)
        assert entry_links(entry.pk) == links, "released cents differ from the model's"
        return entry

    def check(self):
        m = self.model
        unbalanced = sql(
            "SELECT t.idempotency_key, COALESCE(SUM(l.amount_cents), 0), COUNT(l.id)"
            " FROM books_journal_transaction t"
            " LEFT JOIN books_journal_line l ON l.transaction_id = t.id"
            " GROUP BY t.id HAVING COALESCE(SUM(l.amount_cents), 0) <> 0 OR COUNT(l.id) = 0"
        )
        assert unbalanced == [], "every transaction's lines must sum to zero"

        balances = account_balances()
        assert balances == m.accounts

        # Every lot beside what its links trace: credits, cost, cost added, cost released.
        rows = sql(
            "SELECT lot.id, lot.amount, lot.remaining, lot.cost_cents, lot.cost_left_cents,"
            "       SUM(l.amount), SUM(l.cost_cents),"
            "       COALESCE(SUM(l.cost_cents) FILTER (WHERE l.cost_cents > 0), 0),"
            "       COALESCE(-SUM(l.cost_cents) FILTER (WHERE l.cost_cents < 0), 0),"
            "       COUNT(*) FILTER (WHERE l.amount > 0)"
            " FROM credits_lot lot LEFT JOIN credits_ledger_entry_lot l ON l.lot_id = lot.id"
            " GROUP BY lot.id"
        )
        assert {row[0]: row[1:5] for row in rows} == {
            lot.pk: (lot.amount, lot.remaining, lot.cost, lot.cost_left) for lot in m.lots.values()
        }
        assert balances["deferred_revenue"] == sum(row[4] for row in rows)
        for pk, _amount, remaining, cost, left, credits, traced, added, released, adds in rows:
            assert 0 <= left <= cost, f"lot {pk}: unreleased {left} outside 0..{cost}"
            assert traced == left, f"lot {pk}: links trace {traced}, the lot says {left}"
            assert credits == remaining, f"lot {pk}: links trace {credits} credits"
            assert (adds, added) == (1, cost), f"lot {pk}: its cost is added once, at its grant"
            assert released <= cost, f"lot {pk} released more than it cost"
            if remaining == 0:
                assert left == 0 and released == cost, f"empty lot {pk} kept some cost"

        assert sql(
            "SELECT id, status, refunded_cents, refund_shortfall_credits FROM payments_payment"
            " ORDER BY id"
        ) == [(p.payment_pk, p.status, p.refunded, p.shortfall) for p in m.purchases]

        assert book_violations() == []
