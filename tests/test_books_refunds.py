"""Refunds, fees and Essential invoices in the books, driven by signed Stripe events.

Every event goes through the real webhook endpoint (tests/stripe_events.py signs it),
so the view, the registry, payments.services and the fulfilments all run. Expected
cents are computed here, independently: DESIGN.md's rules are

- after refunds totalling T of a package's amount A, ceil(credits x T / A) of its
  credits are void in all (never more than are unused);
- burning k of the r credits left in a lot releases floor(cost_left x k / r) cents of
  its cost, the last credit the rest;
- a package refund of R whose void released V posts deferred_revenue +V, refunds
  +(R - V), cash -R; the card fee is Stripe's 2.9 % (rounded half up) + 30 cents.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from django.utils import timezone

from books.models import JournalLine, JournalTransaction
from books.selectors import account_balances, book_violations
from credits import selectors
from credits.models import CreditLot, CreditPackage, EntryKind, LedgerEntry
from payments import services as payments
from payments import testmode
from payments.models import (
    Payment,
    PaymentStatus,
    Purpose,
    Refund,
    TestModeIntent,
    TestModeSubscription,
)
from subscriptions.models import Subscription
from tests import stripe_events
from tracks import services as tracks
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db

STARTER_CENTS, STARTER_CREDITS = 1999, 30
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


@pytest.fixture(autouse=True)
def _no_subscription_needed(settings):
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False


def card_fee(cents: int) -> int:
    return int((Decimal(cents) * Decimal("0.029")).quantize(Decimal(1), ROUND_HALF_UP)) + 30


def release(cost_left: int, remaining: int, burned: int) -> int:
    if burned == remaining:
        return cost_left
    return math.floor(Fraction(cost_left * burned, remaining))


def books(**nonzero) -> dict[str, int]:
    """Every account at 0 but the ones given."""
    return {code: nonzero.get(code, 0) for code in ACCOUNTS}


def deliver(client, event_type: str, obj: dict, *, event_id=None):
    payload = stripe_events.event(event_type, obj, event_id=event_id)
    response = stripe_events.deliver(client, payload)
    assert response.status_code == 200, response.content
    return payload


def pay_starter(client, user) -> Payment:
    intent = stripe_events.intent(user=user, package="starter", amount=STARTER_CENTS)
    deliver(client, "payment_intent.succeeded", intent)
    payment = Payment.objects.get(stripe_payment_intent_id=intent["id"])
    assert payment.status == PaymentStatus.SUCCEEDED
    return payment


def charge(payment: Payment, refunds: list[tuple[str, int]]) -> dict:
    """A refunded charge as Stripe sends it: every refund so far, oldest first."""
    refunded = sum(cents for _, cents in refunds)
    return {
        "id": f"ch_{payment.stripe_payment_intent_id}",
        "object": "charge",
        "amount": payment.amount_cents,
        "amount_captured": payment.amount_cents,
        "amount_refunded": refunded,
        "currency": "usd",
        "payment_intent": payment.stripe_payment_intent_id,
        "metadata": {"purpose": "credit_package", "user_id": str(payment.user_id)},
        "paid": True,
        "refunded": refunded >= payment.amount_cents,
        "refunds": {
            "object": "list",
            "data": [
                {
                    "id": refund_id,
                    "object": "refund",
                    "amount": cents,
                    "payment_intent": payment.stripe_payment_intent_id,
                    "created": 1_800_000_000 + n,
                    "status": "succeeded",
                }
                for n, (refund_id, cents) in enumerate(refunds)
            ],
        },
    }


def lines(posting: JournalTransaction) -> dict[str, int]:
    return dict(posting.lines.values_list("account__key", "amount_cents"))


def refund_postings(payment: Payment) -> list[JournalTransaction]:
    return list(
        JournalTransaction.objects.filter(payment=payment, event="package_refunded").order_by("id")
    )


def voided(user) -> int:
    return -sum(
        LedgerEntry.objects.filter(user_id=user.pk, kind=EntryKind.VOID).values_list(
            "amount", flat=True
        )
    )


def snapshot():
    """Everything a duplicate event could change."""
    return (
        list(JournalTransaction.objects.order_by("id").values_list("id", "idempotency_key")),
        list(JournalLine.objects.order_by("id").values_list("id", "amount_cents")),
        list(LedgerEntry.objects.order_by("id").values_list("id", "amount")),
        list(CreditLot.objects.order_by("id").values_list("id", "remaining", "cost_left_cents")),
        list(
            Payment.objects.order_by("id").values_list(
                "id", "status", "refunded_cents", "refund_shortfall_credits", "fee_cents"
            )
        ),
        list(Refund.objects.order_by("id").values_list("stripe_refund_id", "amount_cents")),
        account_balances(),
    )


def test_starter_refunded_5_then_5_then_the_rest_voids_8_then_16_then_all(client, user):
    payment = pay_starter(client, user)
    lot = payment.lot
    fee = card_fee(STARTER_CENTS)
    assert account_balances() == books(
        cash=STARTER_CENTS - fee, processor_fees=fee, deferred_revenue=STARTER_CENTS
    )

    # The independent model of the package's lot and of what each refund must post.
    remaining, cost_left, total_refunded, total_voided = STARTER_CREDITS, STARTER_CENTS, 0, 0
    expected_lines = []

    def refund_in_model(cents):
        nonlocal remaining, cost_left, total_refunded, total_voided
        total_refunded += cents
        target = min(
            math.ceil(Fraction(STARTER_CREDITS * total_refunded, STARTER_CENTS)), STARTER_CREDITS
        )
        burn = min(target - total_voided, remaining)
        released = release(cost_left, remaining, burn) if burn else 0
        remaining, cost_left, total_voided = (
            remaining - burn,
            cost_left - released,
            total_voided + burn,
        )
        # The refund that completes the payment also moves the fee Stripe keeps from
        # processor_fees to refunds: it is a cost of the refund, not recovered.
        kept = fee if total_refunded >= STARTER_CENTS else 0
        lines_ = {"deferred_revenue": released, "refunds": cents - released + kept}
        if kept:
            lines_["processor_fees"] = -kept
        expected_lines.append({**lines_, "cash": -cents})

    # 1. $5.00 refunded (re_1): 8 of the 30 credits are void; the payment is partly refunded.
    refund_in_model(500)
    first = deliver(client, "charge.refunded", charge(payment, [("re_1", 500)]))
    payment.refresh_from_db()
    assert voided(user) == 8 == total_voided
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED, 500)
    assert [lines(p) for p in refund_postings(payment)] == expected_lines
    assert refund_postings(payment)[-1].cause_ref == first["id"]

    # 2. Another $5.00 (re_2); the event lists re_1 again, which is applied already.
    refund_in_model(500)
    second = deliver(client, "charge.refunded", charge(payment, [("re_1", 500), ("re_2", 500)]))
    payment.refresh_from_db()
    assert voided(user) == 16 == total_voided
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED, 1000)
    assert [lines(p) for p in refund_postings(payment)] == expected_lines
    assert refund_postings(payment)[-1].cause_ref == second["id"]

    # 3. The rest, $9.99 (re_3): every credit of the package is void.
    refund_in_model(999)
    third = deliver(
        client,
        "charge.refunded",
        charge(payment, [("re_1", 500), ("re_2", 500), ("re_3", 999)]),
    )
    payment.refresh_from_db()
    assert voided(user) == 30 == total_voided
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.REFUNDED, STARTER_CENTS)
    assert payment.refund_shortfall_credits == 0
    postings = refund_postings(payment)
    assert [lines(p) for p in postings] == expected_lines
    assert postings[-1].cause_ref == third["id"]
    assert sorted(
        Refund.objects.filter(payment=payment).values_list("stripe_refund_id", "amount_cents")
    ) == [
        ("re_1", 500),
        ("re_2", 500),
        ("re_3", 999),
    ]
    lot.refresh_from_db()
    assert (lot.remaining, lot.cost_left_cents) == (0, 0)
    assert selectors.balance(user) == 5  # the free gift is untouched
    # Nothing was spent, so everything refunded was recovered from deferred revenue;
    # what was not recovered is the fee Stripe keeps, now booked as a cost of refunds.
    released = sum(step["deferred_revenue"] for step in expected_lines)
    assert released == STARTER_CENTS
    assert account_balances() == books(
        cash=-fee,
        deferred_revenue=0,
        refunds=STARTER_CENTS - released + fee,
    )
    assert book_violations() == []


def test_given_back_credits_keep_package_and_cost_and_a_full_refund_voids_them(client, user):
    payment = pay_starter(client, user)
    package_lot = payment.lot
    generations = [
        tracks.request_generation(
            creator=user,
            title=f"Song {n}",
            prompt="p",
            genre="pop",
            mood="calm",
            duration_seconds=2,
        )
        for n in range(3)
    ]
    # Each generation burns 1 credit of the package (it expires first; the gift never).
    remaining, cost_left, costs = STARTER_CREDITS, STARTER_CENTS, []
    for track in generations:
        (link,) = track.ledger_entry.lot_links.all()
        cents = release(cost_left, remaining, 1)
        assert (link.lot_id, link.amount, link.cost_cents) == (package_lot.pk, -1, -cents)
        remaining, cost_left = remaining - 1, cost_left - cents
        costs.append(cents)

    for track in (generations[0], generations[2]):
        tracks.fail_generation(track_id=track.pk, error="engine down")

    given_back = list(CreditLot.objects.filter(user=user, source="refund").order_by("id"))
    assert [
        (lot.amount, lot.cost_cents, lot.package_id, lot.origin_lot_id, lot.expires_at)
        for lot in given_back
    ] == [
        (1, costs[i], package_lot.package_id, package_lot.pk, package_lot.expires_at)
        for i in (0, 2)
    ]
    used = costs[1]
    assert account_balances() == books(
        cash=STARTER_CENTS - card_fee(STARTER_CENTS),
        processor_fees=card_fee(STARTER_CENTS),
        deferred_revenue=STARTER_CENTS - used,
        revenue_usage=used,
    )

    deliver(client, "charge.refunded", charge(payment, [("re_all", STARTER_CENTS)]))

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    for lot in [package_lot, *given_back]:
        lot.refresh_from_db()
        assert (lot.remaining, lot.cost_left_cents) == (0, 0), f"{lot} was not voided"
    assert voided(user) == STARTER_CREDITS - 1  # all but the credit really used
    assert payment.refund_shortfall_credits == 1
    (posting,) = refund_postings(payment)
    recovered = STARTER_CENTS - used
    fee = card_fee(STARTER_CENTS)
    assert lines(posting) == {
        "deferred_revenue": recovered,
        "refunds": used + fee,
        "processor_fees": -fee,
        "cash": -STARTER_CENTS,
    }
    # What could not be recovered: the cost of the credit that was used, and the fee.
    balances = account_balances()
    assert (balances["refunds"], balances["deferred_revenue"]) == (used + fee, 0)
    assert selectors.balance(user) == 5
    assert book_violations() == []


@pytest.mark.parametrize(
    ("slug", "price_cents"),
    [("starter", 1999), ("fiver", 500), ("fifteen", 1500)],
    ids=["starter-1999", "half-cent-500", "half-cent-1500"],
)
def test_a_package_paid_on_the_test_gateway_books_its_card_fee(client, user, slug, price_cents):
    package, _ = CreditPackage.objects.get_or_create(
        slug=slug,
        defaults={"name": slug, "credits": price_cents // 100, "price_cents": price_cents},
    )
    assert package.price_cents == price_cents
    payment, intent = payments.start_package_purchase(user=user, package=package)
    testmode.confirm(intent["id"], "4242 4242 4242 4242")
    paid = testmode.intent_object(TestModeIntent.objects.get(pk=intent["id"]))
    deliver(client, "payment_intent.succeeded", paid)

    payment.refresh_from_db()
    fee = card_fee(price_cents)  # 2.9 % rounded half up: 500 -> 14.5 -> 15, 1500 -> 43.5 -> 44
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.fee_cents == fee
    assert payment.stripe_charge_id == paid["latest_charge"]
    (fee_posting,) = JournalTransaction.objects.filter(payment=payment, event="card_fee")
    assert lines(fee_posting) == {"processor_fees": fee, "cash": -fee}
    (paid_posting,) = JournalTransaction.objects.filter(payment=payment, event="package_paid")
    assert lines(paid_posting) == {"cash": price_cents, "deferred_revenue": -price_cents}
    assert account_balances() == books(
        cash=price_cents - fee, processor_fees=fee, deferred_revenue=price_cents
    )
    assert book_violations() == []


def test_the_same_charge_refunded_event_twice_changes_nothing_the_second_time(client, user):
    payment = pay_starter(client, user)
    refunded = charge(payment, [("re_1", 500)])
    payload = deliver(client, "charge.refunded", refunded)
    after_first = snapshot()
    assert voided(user) == 8

    again = stripe_events.deliver(client, payload)
    assert again.status_code == 200
    assert snapshot() == after_first
    # A new event about the same refund (Stripe sends charge.refunded and friends) too.
    deliver(client, "charge.refunded", refunded)
    assert snapshot() == after_first
    stored = WebhookEvent.objects.get(stripe_event_id=payload["id"])
    assert (stored.status, stored.attempts) == (EventStatus.PROCESSED, 1)


def _subscription(user_id: str | None, sub_id: str, *, save: bool) -> TestModeSubscription:
    now = timezone.now()
    sub = TestModeSubscription(
        id=sub_id,
        customer=f"cus_{sub_id}",
        status="active",
        metadata={"user_id": user_id} if user_id else {},
        current_period_start=now,
        current_period_end=now + dt.timedelta(days=30),
    )
    if save:
        sub.save()
    return sub


def test_invoice_paid_for_our_essential_subscription_books_one_payment(client, user):
    sub = _subscription(str(user.pk), "sub_ours", save=True)
    created = stripe_events.event(
        "customer.subscription.created", testmode.subscription_object(sub)
    )
    created["created"] = int(time.time())
    assert stripe_events.deliver(client, created).status_code == 200
    assert Subscription.objects.get(user=user).stripe_subscription_id == "sub_ours"
    invoice = testmode.invoice_object(sub, billing_reason="subscription_create", paid=True)
    payload = stripe_events.event("invoice.paid", invoice)
    payload["created"] = int(time.time()) + 1

    assert stripe_events.deliver(client, payload).status_code == 200
    assert stripe_events.deliver(client, payload).status_code == 200  # a duplicate
    deliver(client, "invoice.paid", invoice)  # the same invoice in another event

    (payment,) = Payment.objects.all()
    amount = invoice["amount_paid"]
    assert amount == 500
    assert (payment.purpose, payment.user_id, payment.amount_cents, payment.status) == (
        Purpose.ESSENTIAL,
        user.pk,
        amount,
        PaymentStatus.SUCCEEDED,
    )
    assert payment.stripe_invoice_id == invoice["id"]
    fee = card_fee(amount)  # 14.5 -> 15, + 30
    assert payment.fee_cents == fee
    (posting,) = JournalTransaction.objects.filter(payment=payment, event="essential_paid")
    assert lines(posting) == {"cash": amount, "revenue_subscriptions": -amount}
    assert account_balances() == books(
        cash=amount - fee, processor_fees=fee, revenue_subscriptions=amount
    )
    assert book_violations() == []


def test_subscription_events_that_are_not_ours_answer_200_and_change_nothing(client, user):
    # Another product on the same Stripe account: no local row, no user_id metadata, and
    # not even a copy at (test) Stripe, so a fetch would fail the event.
    sub = _subscription(None, "sub_someone_else", save=False)
    before = snapshot()
    payloads = [
        deliver(
            client,
            "invoice.paid",
            testmode.invoice_object(sub, billing_reason="subscription_cycle", paid=True),
        ),
        deliver(client, "customer.subscription.updated", testmode.subscription_object(sub)),
    ]

    assert snapshot() == before
    assert not Payment.objects.exists()
    assert not Subscription.objects.exists()
    assert not JournalTransaction.objects.exists()
    for payload in payloads:
        stored = WebhookEvent.objects.get(stripe_event_id=payload["id"])
        assert stored.status == EventStatus.PROCESSED
