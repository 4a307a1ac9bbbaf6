"""The reconciliation desk beside the plain payments changelist, on 1,000 payments.

Goal from issue 11: GET /admin/reconciliation/ for a period of 1,000 payments at
least 0.3x as fast as GET /admin/payments/payment/ showing the same rows (its
`created_at` filter for the same day, every row on one page), measured side by side
in one run: warm-up, then alternating ABBA rounds of a few requests each, through
Django's test Client logged in as a superuser, on the built-in test gateway (so
"Stripe" is the test gateway's two list queries). Prints both medians (ms per
request) and the ratio desk speed / changelist speed.

The 1,000 payments are made in bulk for today (UTC), like the payments the desk
reads in production: most succeeded and delivered (a package lot and the books'
money-in and fee postings, through books.services.post), some pending, some failed,
some paid at Stripe with their webhook lost, some refunded at Stripe only. Lots are
bulk-created without ledger entries: neither page reads the credit ledger.

The bench owns its database: it truncates the users (CASCADE: payments, lots,
wallets, ledger, books), the test gateway's intents and the webhook events before
and after (the books' append-only triggers allow TRUNCATE only to a session that
sets books.allow_truncate).

Tunables (environment):
  DESK_BENCH_PAYMENTS   payments in the period (default 1000)
  DESK_BENCH_ROUNDS     ABBA rounds (default 4; each times both pages)
  DESK_BENCH_REQUESTS   requests per page and round (default 2)
  DESK_BENCH_PROFILE    "1": profile one desk request and print the top functions
"""

from __future__ import annotations

import cProfile
import datetime as dt
import io
import os
import pstats
import re
import statistics
import time
import urllib.parse

GOAL = 0.3


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "").replace("_", "").replace(",", "") or default)


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soundstudio.settings.test")
    import django

    django.setup()


def _out(line: str = "") -> None:
    print(line, flush=True)


def _wipe() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET books.allow_truncate = on")
        cursor.execute(
            "TRUNCATE accounts_user, payments_testmodeintent, webhooks_webhookevent"
            " RESTART IDENTITY CASCADE"
        )
        cursor.execute("RESET books.allow_truncate")
    from books.services import ensure_fixed_accounts

    ensure_fixed_accounts()  # books_account went with the artists' accounts (CASCADE)


def _seed(count: int) -> None:
    """`count` package payments of today, in their usual mix of states."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from books import services as books
    from books.models import AccountCode, JournalCause
    from credits.models import CreditLot, CreditPackage, LotSource
    from payments import testmode
    from payments.models import Payment, PaymentStatus, Purpose, TestModeIntent

    packages = list(CreditPackage.objects.filter(slug__in=["starter", "pro", "premium"]))
    now = timezone.now()
    with transaction.atomic():
        users = User.objects.bulk_create(
            User(
                email=f"desk-bench-{i}@bench.invalid",
                display_name=f"Desk Bench {i}",
                slug=f"desk-bench-{i}",
                password=make_password(None),  # unusable: nobody logs in as them
            )
            for i in range(max(count // 10, 1))
        )
        intents, payments, lots = [], [], []
        for i in range(count):
            package = packages[i % len(packages)]
            kind = i % 20  # 0..16 delivered, 17 pending, 18 webhook lost, 19 declined
            paid = kind <= 16 or kind == 18
            intent = TestModeIntent(
                id=f"pi_test_deskbench{i:07d}",
                client_secret=f"pi_test_deskbench{i:07d}_secret_bench",
                idempotency_key=f"desk-bench:{i}",
                amount=package.price_cents,
                currency="usd",
                metadata={"purpose": "credit_package", "package": package.slug},
                status="succeeded" if paid else "requires_payment_method",
                last_error={"message": "Your card was declined."} if kind == 19 else None,
                charge_id=f"ch_test_deskbench{i:07d}" if paid else "",
                # Every 50th delivered payment was also refunded in the dashboard.
                amount_refunded=500 if kind <= 16 and i % 50 == 1 else 0,
            )
            intents.append(intent)
            lot = None
            if kind <= 16:
                lot = CreditLot(
                    user=users[i % len(users)],
                    amount=package.credits,
                    remaining=package.credits,
                    source=LotSource.PACKAGE,
                    package=package,
                    cost_cents=package.price_cents,
                    cost_left_cents=package.price_cents,
                    grant_key=f"grant:{intent.id}",
                    created_at=now,
                    expires_at=(
                        now + dt.timedelta(days=package.expires_after_days)
                        if package.expires_after_days is not None
                        else None
                    ),
                )
                lots.append(lot)
            payments.append(
                Payment(
                    user=users[i % len(users)],
                    purpose=Purpose.CREDIT_PACKAGE,
                    package=package,
                    amount_cents=package.price_cents,
                    status=(
                        PaymentStatus.SUCCEEDED
                        if kind <= 16
                        else PaymentStatus.FAILED
                        if kind == 19
                        else PaymentStatus.PENDING
                    ),
                    stripe_payment_intent_id=intent.id,
                    stripe_charge_id=intent.charge_id if kind <= 16 else "",
                    fee_cents=testmode.card_fee(package.price_cents) if kind <= 16 else None,
                    completed_at=now if kind <= 16 else None,
                    lot=lot,
                )
            )
        TestModeIntent.objects.bulk_create(intents)
        CreditLot.objects.bulk_create(lots)
        for payment in payments:
            payment.lot_id = payment.lot.pk if payment.lot else None
        Payment.objects.bulk_create(payments)
        for payment in payments:
            if payment.status != PaymentStatus.SUCCEEDED:
                continue
            intent_id, cents = payment.stripe_payment_intent_id, payment.amount_cents
            books.post(
                key=f"books:paid:{intent_id}",
                event="package_paid",
                lines=[(AccountCode.CASH, cents), (AccountCode.DEFERRED_REVENUE, -cents)],
                cause=JournalCause.STRIPE,
                cause_ref="bench",
                payment=payment,
            )
            books.post(
                key=f"books:fee:{intent_id}",
                event="card_fee",
                lines=[
                    (AccountCode.PROCESSOR_FEES, payment.fee_cents),
                    (AccountCode.CASH, -payment.fee_cents),
                ],
                cause=JournalCause.STRIPE,
                cause_ref="bench",
                payment=payment,
            )
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE payments_payment, payments_testmodeintent, books_journal_transaction,"
            " books_journal_line, credits_lot, accounts_user"
        )


_PAYMENT_LINK = re.compile(r'href="/admin/payments/payment/(\d+)/change/')


def _rows_shown(content: bytes) -> int:
    return len(set(_PAYMENT_LINK.findall(content.decode())))


def _time(client, url: str, requests: int) -> float:
    """Seconds per request, over `requests` GETs."""
    start = time.perf_counter()
    for _ in range(requests):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    return (time.perf_counter() - start) / requests


def _profile(client, url: str) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    client.get(url)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    _out(out.getvalue())


def main() -> int:
    _setup_django()
    from django.conf import settings
    from django.contrib import admin
    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from payments.gateway import get_gateway
    from payments.models import Payment

    settings.STRIPE_SECRET_KEY = ""  # the built-in test gateway is "Stripe" here
    assert get_gateway().test_mode
    count = _env_int("DESK_BENCH_PAYMENTS", 1000)
    rounds = _env_int("DESK_BENCH_ROUNDS", 4)
    requests = _env_int("DESK_BENCH_REQUESTS", 2)

    _wipe()
    try:
        started = time.perf_counter()
        _seed(count)
        _out(f"desk: seeded {count:,} payments in {time.perf_counter() - started:.1f} s")
        admin_user = User.objects.create_superuser(
            email="desk-bench-admin@bench.invalid", password=None, display_name="Bench Admin"
        )
        # The changelist shows the period's rows on one page, like the desk.
        payment_admin = admin.site._registry[Payment]
        payment_admin.list_per_page = count
        payment_admin.list_max_show_all = count

        client = Client(SERVER_NAME="localhost")
        client.force_login(admin_user)
        today = timezone.now().astimezone(dt.UTC).date()
        start = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)
        day = {"created_at__gte": start, "created_at__lt": start + dt.timedelta(days=1)}
        pages = {
            "desk": f"/admin/reconciliation/?start={today}&end={today}",
            "changelist": f"/admin/payments/payment/?{urllib.parse.urlencode(day)}",
        }
        for name, url in pages.items():
            shown = _rows_shown(client.get(url).content)  # warm-up and a check
            if shown != count:
                _out(f"desk: {name} shows {shown} payments, not {count}: FAILED")
                return 1
            _time(client, url, 1)

        times: dict[str, list[float]] = {name: [] for name in pages}
        ratios = []
        for r in range(rounds):
            order = ["desk", "changelist"] if r % 2 == 0 else ["changelist", "desk"]
            measured = {name: _time(client, pages[name], requests) for name in order}
            for name, seconds in measured.items():
                times[name].append(seconds)
            ratios.append(measured["changelist"] / measured["desk"])

        desk_ms = statistics.median(times["desk"]) * 1000
        changelist_ms = statistics.median(times["changelist"]) * 1000
        ratio = statistics.median(ratios)
        _out(
            f"desk: reconciliation page ({count:,} payments) {desk_ms:.0f} ms/request, "
            f"payments changelist (same rows, one page) {changelist_ms:.0f} ms/request"
        )
        _out(
            f"desk: ratio {ratio:.2f} (desk speed / changelist speed, median of {rounds} "
            f"ABBA rounds of {requests} requests; goal >= {GOAL})"
            + ("" if ratio >= GOAL else ": BELOW THE GOAL")
        )
        if ratio < GOAL or os.environ.get("DESK_BENCH_PROFILE") == "1":
            _out("desk: profile of one desk request (cumulative time)")
            _profile(client, pages["desk"])
        return 0
    finally:
        _wipe()


if __name__ == "__main__":
    raise SystemExit(main())
