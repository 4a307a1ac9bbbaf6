"""The reconciliation desk (/admin/reconciliation/) on the built-in test gateway.

Stripe's side is the test gateway's own TestModeIntent rows; a "lost webhook" is a
test intent confirmed inside the test's transaction, whose event delivery (queued
with on_commit) never runs. Flags are read from the rendered page, by their labels.
"""

import csv
import datetime as dt
import io
import re
from collections import Counter

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from books.models import JournalTransaction
from credits.models import CreditLot, CreditPackage
from credits.selectors import balance
from credits.services import spend
from payments import services, testmode
from payments.gateway import TestGateway
from payments.models import Payment, PaymentStatus, Purpose, StaffAction, TestModeIntent
from tests import stripe_events
from tests.factories import UserFactory
from webhooks import services as webhook_services
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db

SUCCESS_CARD = "4242424242424242"
DESK = "/admin/reconciliation/"
CSV_URL = "/admin/reconciliation/export.csv"
LABELS = {
    "paid_not_fulfilled": "Paid at Stripe, not fulfilled",
    "fulfilled_not_paid": "Fulfilled, not paid",
    "refunded_not_here": "Refunded at Stripe, not here",
    "amount_mismatch": "Amount mismatch",
    "stale_pending": "Pending over 24 hours",
    "events_failed": "Events failed past their last retry",
}
CODES = {label: code for code, label in LABELS.items()}
CSV_HEADER = [
    "payment_id",
    "created_at",
    "user",
    "purpose",
    "status",
    "amount_cents",
    "currency",
    "refunded_cents",
    "fee_cents",
    "payment_intent",
    "stripe_status",
    "stripe_amount_cents",
    "stripe_refunded_cents",
    "stripe_fee_cents",
    "fulfilled",
    "books_cash_cents",
    "flags",
]


@pytest.fixture(autouse=True)
def _test_mode(settings):
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False
    settings.STRIPE_SECRET_KEY = ""


def make_staff(*, permission: bool) -> User:
    staff = UserFactory()
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    if permission:
        staff.user_permissions.add(
            Permission.objects.get(
                content_type__app_label="payments", codename="use_reconciliation_desk"
            )
        )
    return User.objects.get(pk=staff.pk)  # no cached permissions


@pytest.fixture
def staff(db):
    return make_staff(permission=True)


@pytest.fixture
def desk(staff):
    client = Client()
    client.force_login(staff)
    return client


# --- Situations ---------------------------------------------------------------------


def start(user, slug="starter"):
    return services.start_package_purchase(user=user, package=CreditPackage.objects.get(slug=slug))


def intent_of(payment) -> dict:
    return testmode.intent_object(TestModeIntent.objects.get(pk=payment.stripe_payment_intent_id))


def paid_at_stripe(user, slug="starter") -> Payment:
    """Paid on the test card page; its event is queued on commit, which never comes."""
    payment, intent = start(user, slug)
    testmode.confirm(intent["id"], SUCCESS_CARD)
    return Payment.objects.get(pk=payment.pk)


def fulfilled(user, slug="starter") -> Payment:
    payment = paid_at_stripe(user, slug)
    services.complete_from_intent(intent_of(payment), cause_ref="test")
    return Payment.objects.get(pk=payment.pk)


def backdate(payment, *, hours: float) -> Payment:
    moment = timezone.now() - dt.timedelta(hours=hours)
    Payment.objects.filter(pk=payment.pk).update(created_at=moment)
    TestModeIntent.objects.filter(pk=payment.stripe_payment_intent_id).update(created=moment)
    return Payment.objects.get(pk=payment.pk)


def period(*, days_back: int = 1) -> dict:
    """The desk's period form: the last `days_back` days and today (UTC)."""
    today = timezone.now().astimezone(dt.UTC).date()
    return {"start": (today - dt.timedelta(days=days_back)).isoformat(), "end": today.isoformat()}


def action_url(payment, action: str) -> str:
    return f"/admin/reconciliation/payments/{payment.pk}/{action}/"


# --- Reading the page ---------------------------------------------------------------

_TBODY = re.compile(r'<table id="result_list".*?<tbody>(.*?)</tbody>', re.S)
_TR = re.compile(r"<tr>(.*?)</tr>", re.S)
_PAYMENT = re.compile(r'<a href="/admin/payments/payment/(\d+)/change/">')
_FLAGS_CELL = re.compile(r'<td class="flags">(.*?)</td>', re.S)
_FLAG = re.compile(r'<span class="flag"[^>]*>([^<]+)</span>')
_ACTION = re.compile(r'href="/admin/reconciliation/payments/(\d+)/([a-z]+)/')


def desk_rows(response) -> dict[int, dict]:
    """{payment id: {"flags": [codes], "actions": [names]}} as the page's table shows
    them, whatever the order of its columns."""
    assert response.status_code == 200, response.status_code
    body = _TBODY.search(response.content.decode())
    rows = {}
    for tr in _TR.findall(body.group(1) if body else ""):
        pk = int(_PAYMENT.search(tr).group(1))
        flags_cell = _FLAGS_CELL.search(tr).group(1)
        rows[pk] = {
            "flags": [CODES[label] for label in _FLAG.findall(flags_cell)],
            "actions": [action for row_pk, action in _ACTION.findall(tr) if int(row_pk) == pk],
        }
    return rows


def books_paid_postings(payment) -> int:
    return JournalTransaction.objects.filter(
        idempotency_key__startswith="books:paid:", payment=payment
    ).count()


# --- Flags ---------------------------------------------------------------------------


def test_a_paid_but_undelivered_payment_is_flagged_and_a_matching_one_is_not(desk, user):
    lost = paid_at_stripe(user)
    ok = fulfilled(UserFactory())

    rows = desk_rows(desk.get(DESK, period()))

    assert rows[lost.pk]["flags"] == ["paid_not_fulfilled"]
    assert rows[lost.pk]["actions"] == ["settle"]
    assert rows[ok.pk]["flags"] == []
    assert rows[ok.pk]["actions"] == []


def test_amount_mismatch_is_flagged_and_not_fulfilled_even_when_settled(desk, staff, user):
    # Stripe's intent says 999 cents; our payment is the Starter package's 1999.
    delivered, intent = start(user)
    TestModeIntent.objects.filter(pk=intent["id"]).update(amount=999)
    testmode.confirm(intent["id"], SUCCESS_CARD)
    services.complete_from_intent(intent_of(delivered), cause_ref="webhook")
    lost, intent2 = start(UserFactory())
    TestModeIntent.objects.filter(pk=intent2["id"]).update(amount=999)
    testmode.confirm(intent2["id"], SUCCESS_CARD)  # and its webhook never came

    rows = desk_rows(desk.get(DESK, period()))

    for payment in (delivered, lost):
        assert rows[payment.pk]["flags"] == ["amount_mismatch"]
        assert rows[payment.pk]["actions"] == ["refund"]
    # Settling the undelivered one from Stripe still refuses to fulfil it.
    desk.post(action_url(lost, "settle"), {"reason": "customer says they paid"})
    for payment in (delivered, lost):
        payment.refresh_from_db()
        assert payment.status == PaymentStatus.FAILED
        assert payment.flag == "amount_mismatch"
        assert payment.lot_id is None
        assert books_paid_postings(payment) == 0
    assert balance(user) == 5
    assert not CreditLot.objects.filter(source="package").exists()

    # Its action refunds what Stripe took, and then the flag is gone.
    desk.post(action_url(delivered, "refund"), {"reason": "wrong amount charged"})
    assert TestModeIntent.objects.get(pk=intent["id"]).amount_refunded == 999
    rows = desk_rows(desk.get(DESK, period()))
    assert rows[delivered.pk]["flags"] == []
    assert rows[lost.pk]["flags"] == ["amount_mismatch"]


def test_a_refund_made_at_stripe_only_is_flagged_and_settle_applies_it(desk, user):
    payment = fulfilled(user, "pro")
    testmode.refund(payment.stripe_payment_intent_id, amount=2000, idempotency_key="dashboard")

    rows = desk_rows(desk.get(DESK, period()))
    assert rows[payment.pk]["flags"] == ["refunded_not_here"]
    assert rows[payment.pk]["actions"] == ["settle"]

    desk.post(action_url(payment, "settle"), {"reason": "refunded in the dashboard"})

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED
    assert payment.refunded_cents == 2000
    # ceil(200 credits x 2000 / 5900) = 68 of the package's credits are void.
    assert balance(user) == 5 + 200 - 68
    assert desk_rows(desk.get(DESK, period()))[payment.pk]["flags"] == []


def test_pending_over_24_hours_is_flagged_then_canceled_by_the_job(desk, user):
    old, _ = start(user)
    old = backdate(old, hours=25)
    recent, _ = start(UserFactory(), "pro")
    recent = backdate(recent, hours=23)

    rows = desk_rows(desk.get(DESK, period(days_back=2)))
    assert rows[old.pk]["flags"] == ["stale_pending"]
    assert rows[old.pk]["actions"] == ["cancel"]
    assert rows[recent.pk]["flags"] == []

    report = services.reconcile()

    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.status == PaymentStatus.CANCELED
    assert TestModeIntent.objects.get(pk=old.stripe_payment_intent_id).status == "canceled"
    assert recent.status == PaymentStatus.PENDING
    assert (
        TestModeIntent.objects.get(pk=recent.stripe_payment_intent_id).status
        == "requires_payment_method"
    )
    assert report == [f"payment {old.pk}: unpaid for 24 hours, canceled"]
    assert desk_rows(desk.get(DESK, period(days_back=2)))[old.pk]["flags"] == []
    # A canceled intent can never be paid.
    with pytest.raises(ValueError, match="canceled"):
        testmode.confirm(old.stripe_payment_intent_id, SUCCESS_CARD)


def test_one_payments_error_does_not_stop_the_cancel_sweep(user, monkeypatch):
    first, _ = start(user)
    second, _ = start(UserFactory())
    first, second = backdate(first, hours=30), backdate(second, hours=26)
    real = TestGateway.cancel_payment_intent

    def cancel(self, intent_id, **kwargs):
        if intent_id == first.stripe_payment_intent_id:
            raise RuntimeError("boom")
        return real(self, intent_id, **kwargs)

    monkeypatch.setattr(TestGateway, "cancel_payment_intent", cancel)

    report = services.reconcile()

    assert report[0].startswith(f"payment {first.pk}: error")
    assert f"payment {second.pk}: unpaid for 24 hours, canceled" in report
    assert Payment.objects.get(pk=second.pk).status == PaymentStatus.CANCELED


def fail_past_retries(client, payment, monkeypatch) -> WebhookEvent:
    """Deliver the payment's succeeded event while its handler breaks, and let every
    retry of the periodic job fail too."""
    real = services.set_status
    monkeypatch.setattr(services, "set_status", lambda *a, **k: 1 / 0)
    payload = stripe_events.event("payment_intent.succeeded", intent_of(payment))
    assert stripe_events.deliver(client, payload).status_code == 500
    for _ in range(webhook_services.MAX_ATTEMPTS):
        webhook_services.retry_failed(now=timezone.now() + dt.timedelta(days=1))
    monkeypatch.setattr(services, "set_status", real)
    event = WebhookEvent.objects.get(stripe_event_id=payload["id"])
    assert event.status == EventStatus.FAILED
    assert event.attempts == webhook_services.MAX_ATTEMPTS
    return event


def test_events_failed_past_their_last_retry_are_flagged_and_replayed(
    desk, client, user, monkeypatch
):
    payment = paid_at_stripe(user)
    event = fail_past_retries(client, payment, monkeypatch)

    rows = desk_rows(desk.get(DESK, period()))
    assert sorted(rows[payment.pk]["flags"]) == ["events_failed", "paid_not_fulfilled"]
    assert sorted(rows[payment.pk]["actions"]) == ["replay", "settle"]

    desk.post(action_url(payment, "replay"), {"reason": "handler fixed"})

    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    assert balance(user) == 35
    assert desk_rows(desk.get(DESK, period()))[payment.pk]["flags"] == []


# --- Who may use it ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "fan"])
def test_non_staff_get_the_admin_login_for_the_desk_the_csv_and_actions(client, user, who):
    payment = paid_at_stripe(user)
    if who == "fan":
        client.force_login(UserFactory())
    urls = [DESK, CSV_URL, action_url(payment, "settle")]

    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"/admin/login/?next={url}"), url
    response = client.post(action_url(payment, "settle"), {"reason": "let me in"})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")

    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING
    assert balance(user) == 5
    assert not StaffAction.objects.exists()


def test_staff_without_the_permission_get_403_and_nothing_changes(client, user):
    payment = paid_at_stripe(user)
    client.force_login(make_staff(permission=False))

    for url in (DESK, CSV_URL, action_url(payment, "settle")):
        assert client.get(url).status_code == 403, url
    assert client.post(action_url(payment, "settle"), {"reason": "x"}).status_code == 403
    assert client.post(action_url(payment, "cancel"), {"reason": "x"}).status_code == 403

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert payment.lot_id is None
    assert balance(user) == 5
    assert not StaffAction.objects.exists()
    assert TestModeIntent.objects.get(pk=payment.stripe_payment_intent_id).status == "succeeded"


def test_staff_with_the_permission_see_the_desk_csv_and_confirmation_page(desk, user):
    payment = paid_at_stripe(user)

    page = desk.get(DESK, period())
    assert payment.pk in desk_rows(page)
    export = desk.get(CSV_URL, period())
    assert export.status_code == 200
    assert export["Content-Type"].startswith("text/csv")
    confirm = desk.get(action_url(payment, "settle"))
    assert confirm.status_code == 200
    assert "Yes, settle from stripe" in confirm.content.decode()
    assert 'name="reason"' in confirm.content.decode()
    # Showing the confirmation page runs nothing.
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING
    assert not StaffAction.objects.exists()


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_an_action_without_a_reason_does_not_run(desk, user, reason):
    payment = paid_at_stripe(user)
    data = {} if reason is None else {"reason": reason}

    response = desk.post(action_url(payment, "settle"), data)

    assert response.status_code == 200  # the confirmation page again
    if reason is not None:
        assert "This field is required." in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert payment.lot_id is None
    assert balance(user) == 5
    assert not StaffAction.objects.exists()


def test_an_unknown_action_is_refused(desk, user):
    payment = paid_at_stripe(user)

    assert desk.post(action_url(payment, "delete"), {"reason": "x"}).status_code == 403
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING


# --- Actions are recorded ------------------------------------------------------------


def _settle_case(user, client, monkeypatch):
    return paid_at_stripe(user)


def _cancel_case(user, client, monkeypatch):
    payment, _ = start(user)
    return backdate(payment, hours=30)


def _refund_case(user, client, monkeypatch):
    return fulfilled(user)


def _replay_case(user, client, monkeypatch):
    payment = paid_at_stripe(user)
    fail_past_retries(client, payment, monkeypatch)
    return payment


ACTION_CASES = {
    # action: (make the situation, the payment's status after, the balance after)
    "settle": (_settle_case, PaymentStatus.SUCCEEDED, 35),
    "cancel": (_cancel_case, PaymentStatus.CANCELED, 5),
    "refund": (_refund_case, PaymentStatus.REFUNDED, 5),
    "replay": (_replay_case, PaymentStatus.SUCCEEDED, 35),
}


@pytest.mark.parametrize("action", list(ACTION_CASES))
def test_every_action_runs_and_is_recorded_with_the_staff_user_and_reason(
    desk, staff, client, user, monkeypatch, action
):
    make, status_after, balance_after = ACTION_CASES[action]
    payment = make(user, client, monkeypatch)
    reason = f"ticket 4711: {action} please"

    response = desk.post(
        action_url(payment, action) + "?back=flag%3Dstale_pending", {"reason": reason}
    )

    assert response.status_code == 302
    assert response["Location"] == f"{DESK}?flag=stale_pending"
    payment.refresh_from_db()
    assert payment.status == status_after
    assert balance(user) == balance_after
    recorded = StaffAction.objects.get()
    assert (recorded.staff_user, recorded.action, recorded.payment, recorded.reason) == (
        staff,
        action,
        payment,
        reason,
    )
    assert recorded.ok is True
    # The page lists it among the recent desk actions.
    assert reason in desk.get(DESK, period()).content.decode()


def test_a_failed_action_is_recorded_as_failed(desk, staff, user):
    payment = fulfilled(user)

    response = desk.post(action_url(payment, "cancel"), {"reason": "try it"}, follow=True)

    assert "Only an unpaid payment" in response.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    recorded = StaffAction.objects.get()
    assert (recorded.staff_user, recorded.action, recorded.ok) == (staff, "cancel", False)
    assert recorded.reason == "try it"


def test_settle_posted_twice_fulfils_once(desk, user):
    payment = paid_at_stripe(user)

    for _ in range(2):
        desk.post(action_url(payment, "settle"), {"reason": "lost webhook"})

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert CreditLot.objects.filter(user=user, source="package").count() == 1
    assert books_paid_postings(payment) == 1
    assert balance(user) == 35
    assert StaffAction.objects.filter(action="settle", ok=True).count() == 2


# --- The CSV ---------------------------------------------------------------------------


def test_csv_has_one_row_per_payment_created_in_the_period_and_none_outside(desk, user):
    today = timezone.now().astimezone(dt.UTC).date()
    first, last = today - dt.timedelta(days=3), today - dt.timedelta(days=1)

    def at(day, time, payment):
        moment = dt.datetime.combine(day, time, tzinfo=dt.UTC)
        Payment.objects.filter(pk=payment.pk).update(created_at=moment)
        return payment

    inside = [
        at(first, dt.time(0, 0, 0), fulfilled(user)),
        at(first + dt.timedelta(days=1), dt.time(12), paid_at_stripe(UserFactory(), "pro")),
        at(last, dt.time(23, 59, 59, 999999), start(UserFactory(), "premium")[0]),
    ]
    at(first - dt.timedelta(days=1), dt.time(23, 59, 59, 999999), fulfilled(UserFactory()))
    at(today, dt.time(0, 0, 0), fulfilled(UserFactory()))
    fulfilled(UserFactory())  # created now: today, outside too

    response = desk.get(CSV_URL, {"start": first.isoformat(), "end": last.isoformat()})

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="reconciliation-{first:%Y%m%d}-{last:%Y%m%d}.csv"'
    )
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == CSV_HEADER
    rows = [dict(zip(CSV_HEADER, row, strict=True)) for row in table[1:]]
    assert sorted(int(row["payment_id"]) for row in rows) == sorted(p.pk for p in inside)
    by_id = {int(row["payment_id"]): row for row in rows}
    done = by_id[inside[0].pk]
    assert done["user"] == user.email
    assert (done["purpose"], done["status"], done["amount_cents"]) == (
        "credit_package",
        "succeeded",
        "1999",
    )
    fee = (1999 * 29 + 500) // 1000 + 30  # 2.9% + 30 cents
    assert (done["stripe_status"], done["stripe_amount_cents"], done["stripe_fee_cents"]) == (
        "succeeded",
        "1999",
        str(fee),
    )
    assert (done["fulfilled"], done["books_cash_cents"], done["flags"]) == (
        "yes",
        str(1999 - fee),
        "",
    )
    # Two days ago: pending here for more than 24 hours.
    assert by_id[inside[1].pk]["flags"] == "paid_not_fulfilled stale_pending"
    assert by_id[inside[1].pk]["fulfilled"] == "no"
    # Yesterday at 23:59:59: stale only once 24 hours have passed since.
    late = Payment.objects.get(pk=inside[2].pk).created_at
    stale = late <= timezone.now() - dt.timedelta(hours=24)
    assert (by_id[inside[2].pk]["status"], by_id[inside[2].pk]["flags"]) == (
        "pending",
        "stale_pending" if stale else "",
    )


# --- 1,000 payments: constant SQL and Stripe calls -------------------------------------

COUNTED = [
    "list_payment_intents",
    "list_charges",
    "retrieve_payment_intent",
    "list_refunds",
    "card_fee",
    "cancel_payment_intent",
    "create_refund",
]


@pytest.fixture
def gateway_calls(monkeypatch) -> Counter:
    calls: Counter = Counter()
    for name in COUNTED:
        real = getattr(TestGateway, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(TestGateway, name, counted)
    return calls


def bulk_payments(users, package, count: int, *, offset: int) -> None:
    """`count` package payments of mixed states, with their test intents, in two queries."""
    intents, payments = [], []
    for i in range(offset, offset + count):
        paid = i % 3 != 0
        intent = TestModeIntent(
            id=f"pi_test_bulk{i:06d}",
            client_secret=f"pi_test_bulk{i:06d}_secret_x",
            idempotency_key=f"bulk:{i}",
            amount=package.price_cents,
            currency="usd",
            metadata={"purpose": "credit_package", "package": package.slug},
            status="succeeded" if paid else "requires_payment_method",
            charge_id=f"ch_test_bulk{i:06d}" if paid else "",
            amount_refunded=100 if paid and i % 7 == 0 else 0,
        )
        intents.append(intent)
        payments.append(
            Payment(
                user=users[i % len(users)],
                purpose=Purpose.CREDIT_PACKAGE,
                package=package,
                amount_cents=package.price_cents,
                status=PaymentStatus.SUCCEEDED if i % 5 == 0 else PaymentStatus.PENDING,
                stripe_payment_intent_id=intent.id,
            )
        )
    TestModeIntent.objects.bulk_create(intents)
    Payment.objects.bulk_create(payments)


# The desk page's queries: the session with its user (accounts.sessions) and the
# user's permissions (user and group), the payments with their users and packages,
# Stripe's two lists (the test gateway's intents, twice), the books, the failed
# events, the recent desk actions.
DESK_QUERIES = 9


def test_the_desk_with_1000_payments_takes_as_many_queries_and_stripe_calls_as_with_10(
    desk, staff, client, user, monkeypatch, gateway_calls, django_assert_num_queries
):
    # Some real history first: fulfilled, refunded, failed events, staff actions.
    done = fulfilled(user)
    services.request_refund(payment=done, amount_cents=500)
    paid_at_stripe(UserFactory(), "pro")
    fail_past_retries(client, paid_at_stripe(UserFactory()), monkeypatch)
    services.settle_from_stripe(payment=done, staff_user=staff, reason="history")
    users = list(
        User.objects.bulk_create(
            User(email=f"bulk{i}@example.com", display_name=f"Bulk {i}", slug=f"bulk-{i}")
            for i in range(40)
        )
    )
    package = CreditPackage.objects.get(slug="pro")
    bulk_payments(users, package, 10 - Payment.objects.count(), offset=0)
    assert Payment.objects.count() == 10

    gateway_calls.clear()
    with CaptureQueriesContext(connection) as ten:
        small = desk.get(DESK, period())
    small_calls = dict(gateway_calls)
    assert len(desk_rows(small)) == 10

    bulk_payments(users, package, 990, offset=10)
    gateway_calls.clear()
    with django_assert_num_queries(len(ten)):
        large = desk.get(DESK, period())
    rows = desk_rows(large)

    assert len(rows) == 1000
    assert dict(gateway_calls) == small_calls == {"list_payment_intents": 1, "list_charges": 1}
    assert len(ten) == DESK_QUERIES
    # What the rows say: the bulk rows i are paid at Stripe unless i % 3 == 0, ours
    # says succeeded when i % 5 == 0 (with nothing in the books), Stripe refunded 100
    # cents when i % 7 == 0; of the real ones, one lost webhook and one whose events
    # failed past their retries.
    bulk = [*range(7), *range(10, 1000)]
    paid = [i for i in bulk if i % 3 != 0]
    flagged = Counter(code for row in rows.values() for code in row["flags"])
    assert flagged == {
        "paid_not_fulfilled": len(paid) + 2,
        "refunded_not_here": sum(1 for i in paid if i % 7 == 0),
        "fulfilled_not_paid": sum(1 for i in bulk if i % 15 == 0),
        "events_failed": 1,
    }


# --- Explain a balance ------------------------------------------------------------------


def test_the_user_page_explains_the_balance_and_warns_when_the_cache_differs(admin_client, user):
    payment = fulfilled(user)
    spend(user=user, amount=3, reason="track_generation", idempotency_key="explain:1")
    lot = Payment.objects.get(pk=payment.pk).lot
    url = reverse("admin:accounts_user_change", args=[user.pk])

    page = admin_client.get(url).content.decode()

    assert "<strong>32</strong> credits spendable now" in page
    assert "wallet (cached) 32" in page and "entries sum 32" in page
    assert "they agree" in page
    assert 'role="alert"' not in page
    assert f'href="/admin/credits/creditlot/{lot.pk}/change/"' in page
    assert f'href="/admin/payments/payment/{payment.pk}/change/"' in page
    for key in (f"signup:{user.pk}", f"grant:{payment.stripe_payment_intent_id}", "explain:1"):
        assert key in page
    assert "<td>27</td>" in page  # the package lot's remaining

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE credits_wallet SET balance = balance + 7 WHERE user_id = %s", [user.pk]
        )

    page = admin_client.get(url).content.decode()

    assert 'role="alert"' in page
    assert "entries sum to 32, the cached balance says 39" in page
    assert "&ne; the cached balance 39" in page
    assert "they agree" not in page
