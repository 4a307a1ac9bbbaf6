"""The revenue page (/admin/revenue/) against `books_report` and against figures
worked out by hand, on a month of packages, Essential invoices, generation spends,
refunds and expiries (fan purchases are not on this branch), with money moving in
the months either side that must not count.
"""

import datetime as dt
import json
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from credits.models import CreditPackage
from credits.selectors import balance
from credits.services import expire_due, spend
from payments import services, testmode
from payments.models import Payment, PaymentStatus, TestModeIntent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

APRIL = dt.datetime(2026, 4, 30, 23, 50, tzinfo=dt.UTC)
MAY = dt.datetime(2026, 5, 1, 0, 5, tzinfo=dt.UTC)
MAY_EXPIRY = dt.datetime(2026, 5, 31, 12, 0, tzinfo=dt.UTC)  # after 30 days, still May
JUNE = dt.datetime(2026, 6, 1, 0, 1, tzinfo=dt.UTC)

STARTER, PRO, PREMIUM, ESSENTIAL = 1999, 5900, 12900, 500


@pytest.fixture(autouse=True)
def _test_mode(settings):
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False
    settings.STRIPE_SECRET_KEY = ""


def card_fee(cents: int) -> int:
    """Stripe's standard fee, worked out here: 2.9% rounded half up, plus 30 cents."""
    return int((Decimal(cents) * Decimal("0.029")).quantize(Decimal(1), ROUND_HALF_UP)) + 30


def buy(user, slug: str) -> Payment:
    """A package paid on the test card page and applied as its webhook would."""
    payment, intent = services.start_package_purchase(
        user=user, package=CreditPackage.objects.get(slug=slug)
    )
    testmode.confirm(intent["id"], "4242424242424242")
    services.complete_from_intent(
        testmode.intent_object(TestModeIntent.objects.get(pk=intent["id"])), cause_ref="test"
    )
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    return payment


def invoice(user, invoice_id: str) -> Payment:
    return services.record_invoice_payment(
        invoice={
            "id": invoice_id,
            "amount_paid": ESSENTIAL,
            "currency": "usd",
            "charge": f"ch_{invoice_id}",
        },
        user_id=user.pk,
        cause_ref="test",
    )


def cents(text: str) -> int:
    """ "$1,234.56" / "-$1.00" -> cents."""
    text = text.strip().replace(",", "")
    sign = -1 if text.startswith("-") else 1
    return sign * int(Decimal(text.lstrip("-").lstrip("$")) * 100)


def books_report(*args: str) -> dict:
    out = StringIO()
    call_command("books_report", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def page_accounts(html: str) -> dict[str, int]:
    """The table of the books: {account code: cents} from its rows' second cells."""
    table = re.search(r'<table class="rev" id="books-accounts">(.*?)</table>', html, re.S)
    assert table, "no books-accounts table"
    rows = re.findall(
        r'<tr data-account="([^"]+)"><td>[^<]*</td><td class="n">(-?\d+)</td>', table.group(1)
    )
    return {code: int(value) for code, value in rows}


def page_cards(html: str) -> dict[str, int]:
    """The figure cards at the top: {label: cents} (money cards only)."""
    found = re.findall(r'<div><span class="n">([^<]+)</span>([^<(]+)', html)
    return {label.strip(): cents(value) for value, label in found if "$" in value}


@pytest.fixture
def seeded(time_machine):
    """April: one Pro package. May: four packages, two Essential invoices, spends,
    a partial and a full refund, and the month-end expiry. June: more money in."""
    time_machine.move_to(APRIL, tick=False)
    a, b, c, d = (UserFactory() for _ in range(4))  # each with the free 5 credits
    buy(d, "pro")

    time_machine.move_to(MAY, tick=False)
    buy(a, "starter")
    pro = buy(b, "pro")
    buy(c, "premium")
    second_starter = buy(b, "starter")
    invoice(a, "in_rev_a")
    invoice(b, "in_rev_b")
    time_machine.shift(dt.timedelta(days=3))
    spend(user=a, amount=6, reason="track_generation", idempotency_key="rev:a:6")
    spend(user=c, amount=10, reason="track_generation", idempotency_key="rev:c:10")
    time_machine.shift(dt.timedelta(days=3))
    services.request_refund(payment=pro, amount_cents=1500)
    services.request_refund(payment=second_starter)  # in full

    time_machine.move_to(MAY_EXPIRY, tick=False)
    assert expire_due(now=MAY_EXPIRY) == 3  # a's Starter, b's Pro, d's April Pro

    time_machine.move_to(JUNE, tick=False)
    invoice(d, "in_rev_d_june")
    buy(d, "starter")
    return {"a": a, "b": b, "c": c, "d": d}


def expected_may() -> dict[str, int]:
    """May's books, worked out by hand from DESIGN.md's rules."""
    paid = [STARTER, PRO, PREMIUM, STARTER, ESSENTIAL, ESSENTIAL]
    fees = sum(card_fee(x) for x in paid)
    # Spends release floor(cost_left x k / r): a burns 6 of the Starter lot (it expires
    # first); c burns its 5 free credits (oldest of two never-expiring lots), then 5
    # of the Premium lot.
    usage_a = math.floor(STARTER * 6 / 30)
    usage_c = math.floor(PREMIUM * 5 / 500)
    # The partial refund of 1500 of the Pro voids ceil(200 x 1500 / 5900) credits and
    # releases their share of its cost; the full refund voids the whole second Starter.
    pro_void = math.ceil(200 * 1500 / PRO)
    pro_released = math.floor(PRO * pro_void / 200)
    starter_released = STARTER
    # Month-end expiry: what is left of a's Starter and b's Pro, and d's April Pro.
    breakage = (STARTER - usage_a) + (PRO - pro_released) + PRO
    package_cash = STARTER + PRO + PREMIUM + STARTER
    refunded = 1500 + STARTER
    # The second Starter is refunded in full: the fee Stripe keeps on it moves from
    # processor fees to refunds (not recovered).
    kept_fee = card_fee(STARTER)
    return {
        "cash": sum(paid) - fees - refunded,
        "processor_fees": fees - kept_fee,
        "deferred_revenue": package_cash
        - usage_a
        - usage_c
        - pro_released
        - starter_released
        - breakage,
        "revenue_usage": usage_a + usage_c,
        "revenue_breakage": breakage,
        "revenue_subscriptions": 2 * ESSENTIAL,
        "revenue_platform_fees": 0,
        "refunds": (1500 - pro_released) + (STARTER - starter_released) + kept_fee,
        "artist_payable": 0,
    }


def test_the_revenue_page_shows_the_same_figures_as_books_report(admin_client, seeded):
    response = admin_client.get("/admin/revenue/", {"month": "2026-05"})
    assert response.status_code == 200
    html = response.content.decode()

    report = books_report("--from", "2026-05-01", "--to", "2026-05-31")
    assert report["balanced"] is True
    assert page_accounts(html) == report["accounts"]
    assert report["accounts"] == expected_may()
    # The months either side hold money too, which May leaves out.
    everything = books_report()["accounts"]
    assert everything["cash"] > report["accounts"]["cash"]
    assert everything["revenue_subscriptions"] == 3 * ESSENTIAL


def test_the_revenue_cards_are_the_months_money_in_refunds_and_fees(admin_client, seeded):
    html = admin_client.get("/admin/revenue/", {"month": "2026-05"}).content.decode()
    cards = page_cards(html)
    expected = expected_may()
    may_payments = Payment.objects.filter(
        created_at__gte=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
        created_at__lt=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
    )

    card_in = STARTER + PRO + PREMIUM + STARTER + 2 * ESSENTIAL
    assert cards["Card money in"] == card_in
    assert card_in == sum(p.amount_cents for p in may_payments)
    assert cards["Refunds paid"] == 1500 + STARTER
    assert cards["Refunds paid"] == sum(p.refunded_cents for p in may_payments)
    assert cards["Card fees"] == expected["processor_fees"]
    assert cards["Recognized revenue"] == (
        expected["revenue_usage"]
        + expected["revenue_breakage"]
        + expected["revenue_subscriptions"]
        + expected["revenue_platform_fees"]
    )
    # Deferred revenue at the end of May counts April's Pro too: the books up to May 31.
    up_to_may = books_report("--to", "2026-05-31")["accounts"]
    assert cards["Deferred revenue at month end"] == up_to_may["deferred_revenue"]
    assert up_to_may["deferred_revenue"] == PRO + expected["deferred_revenue"]
    # Card money by purpose, and the packages sold, in dollars.
    assert f'<td>Credit package</td><td class="n">${(card_in - 1000) / 100:,.2f}</td>' in html
    assert '<td>Essential subscription</td><td class="n">$10.00</td>' in html
    top = re.search(r"Top packages</th></tr>(.*?)</table>", html, re.S).group(1)
    assert re.findall(r"<td>(\w+)</td>", top) == ["Premium", "Pro", "Starter"]


def test_the_seeded_month_left_the_balances_a_user_would_expect(seeded):
    # a: 5 free + 30 - 6 spent - 24 expired; b: 5 + (200 - 51 voided - 149 expired)
    # + (30 - 30 voided); c: 5 + 500 - 10; d: 5 + 200 expired + June's Starter.
    users = seeded
    assert [balance(users[k]) for k in "abcd"] == [5, 5, 495, 35]


def test_the_revenue_page_needs_its_permission(client):
    fan = UserFactory()
    client.force_login(fan)
    assert client.get("/admin/revenue/")["Location"].startswith("/admin/login/")
    from accounts.models import User

    User.objects.filter(pk=fan.pk).update(is_staff=True)
    assert client.get("/admin/revenue/").status_code == 403
