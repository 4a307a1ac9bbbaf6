"""The monthly allowance reset (subscriptions.services.open_month) for 100,000
active subscribers. Goal from the issue: under 30 seconds on this machine.

Needs the bench database (`make bench ARGS=reset`); it empties the users and
subscriptions tables before and after. BENCH_SUBSCRIBERS changes the size.
"""

from __future__ import annotations

import datetime as dt
import os
import time


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soundstudio.settings.test")
    import django

    django.setup()


def _wipe(cursor) -> None:
    # CASCADE reaches the books' journal (append-only: TRUNCATE only where allowed) and
    # their accounts; the fixed accounts are put back.
    from books.services import ensure_fixed_accounts

    cursor.execute("SET books.allow_truncate = on")
    cursor.execute("TRUNCATE accounts_user RESTART IDENTITY CASCADE")
    cursor.execute("RESET books.allow_truncate")
    ensure_fixed_accounts()


def main() -> int:
    _setup_django()
    from django.db import connection

    from subscriptions import services
    from subscriptions.models import AllowancePeriod

    count = int(os.environ.get("BENCH_SUBSCRIBERS", "100000"))
    with connection.cursor() as cursor:
        _wipe(cursor)
        start = time.perf_counter()
        cursor.execute(
            "INSERT INTO accounts_user (password, is_superuser, email, display_name, slug,"
            " is_staff, is_active, date_joined)"
            " SELECT '!', false, 'sub' || n || '@bench.test', 'Subscriber ' || n,"
            " 'subscriber-' || n, false, true, now() FROM generate_series(1, %s) AS n",
            [count + count // 8],
        )
        # `count` active subscribers, plus past-due and canceled ones the reset must skip.
        cursor.execute(
            "INSERT INTO subscriptions_subscription (user_id, plan, terms_version,"
            " stripe_subscription_id, stripe_customer_id, status, cancel_at_period_end,"
            " stripe_version, created_at, updated_at)"
            " SELECT id, 'essential', '2026-11', 'sub_bench_' || id, 'cus_bench_' || id,"
            " CASE WHEN id <= %s THEN 'active' WHEN id %% 2 = 0 THEN 'past_due'"
            " ELSE 'canceled' END, false, 1, now(), now() FROM accounts_user",
            [count],
        )
        cursor.execute("SELECT count(*) FROM subscriptions_subscription WHERE status = 'active'")
        active = cursor.fetchone()[0]
        cursor.execute("ANALYZE subscriptions_subscription")
    print(
        f"reset: loaded {count:,} subscribers ({active:,} active) in "
        f"{time.perf_counter() - start:.1f} s"
    )

    month = dt.date(2031, 1, 1)
    start = time.perf_counter()
    opened = services.open_month(month=month)
    seconds = time.perf_counter() - start
    print(
        f"reset: opened {opened:,} allowance periods in {seconds:.2f} s = "
        f"{opened / seconds:,.0f} subscribers/s (goal: 100,000 in under 30 s)"
    )
    start = time.perf_counter()
    again = services.open_month(month=month)
    print(f"reset: second run opened {again} in {time.perf_counter() - start:.2f} s")
    ok = opened == active and again == 0
    ok = ok and AllowancePeriod.objects.filter(month=month, used=0, limit=5).count() == active
    print(f"reset: check {'OK' if ok else 'FAILED'}: one period per active subscriber, none twice")
    with connection.cursor() as cursor:
        _wipe(cursor)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
