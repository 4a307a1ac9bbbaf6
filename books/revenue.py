"""Reads for the revenue page (/admin/revenue/): monthly figures, all from the books.

Two queries cover any number of months: the period's journal lines grouped by month,
account, event and the paying payment's purpose and package; and the month-end
balances of deferred revenue and artist payables, cumulated from the beginning.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from books.models import NORMAL_SIDE, AccountCode, NormalSide

REVENUE_ACCOUNTS = [
    AccountCode.REVENUE_USAGE,
    AccountCode.REVENUE_BREAKAGE,
    AccountCode.REVENUE_SUBSCRIPTIONS,
    AccountCode.REVENUE_PLATFORM_FEES,
]
ESSENTIAL_PRICE_CENTS = 500  # DESIGN.md: Essential is $5/month


def month_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1, day=1)


@dataclass
class Month:
    start: dt.datetime
    card_in: dict[str, int] = field(default_factory=dict)  # by payment purpose
    refunds_paid: int = 0  # cash back to cards
    card_fees: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # by revenue account
    not_recovered: int = 0  # the `refunds` account
    deferred_revenue: int = 0  # balance at month end
    artist_payable: int = 0  # balance at month end
    essential_invoices: int = 0
    packages: dict[str, int] = field(default_factory=dict)  # cash in by package name

    @property
    def end(self) -> dt.datetime:
        return add_months(self.start, 1)

    @property
    def card_in_total(self) -> int:
        return sum(self.card_in.values())

    @property
    def revenue_total(self) -> int:
        return sum(self.revenue.values())

    @property
    def refund_rate(self) -> float | None:
        return self.refunds_paid / self.card_in_total if self.card_in_total else None

    @property
    def top_packages(self) -> list[tuple[str, int]]:
        return sorted(self.packages.items(), key=lambda kv: -kv[1])[:3]


_ACTIVITY_SQL = """
SELECT date_trunc('month', t.created_at AT TIME ZONE 'UTC') AS month,
       a.code, t.event, COALESCE(p.purpose, ''), COALESCE(pk.name, ''),
       SUM(l.amount_cents), COUNT(DISTINCT t.payment_id)
FROM books_journal_line l
JOIN books_journal_transaction t ON t.id = l.transaction_id
JOIN books_account a ON a.id = l.account_id
LEFT JOIN payments_payment p ON p.id = t.payment_id
LEFT JOIN credits_package pk ON pk.id = p.package_id
WHERE t.created_at >= %s AND t.created_at < %s
GROUP BY 1, 2, 3, 4, 5
"""

_BALANCES_SQL = """
SELECT date_trunc('month', t.created_at AT TIME ZONE 'UTC') AS month, a.code,
       SUM(l.amount_cents)
FROM books_journal_line l
JOIN books_journal_transaction t ON t.id = l.transaction_id
JOIN books_account a ON a.id = l.account_id
WHERE a.code IN ('deferred_revenue', 'artist_payable') AND t.created_at < %s
GROUP BY 1, 2 ORDER BY 1
"""


def _natural(code: str, debit_sum: int) -> int:
    return debit_sum if NORMAL_SIDE[code] == NormalSide.DEBIT else -debit_sum


def months(*, last: dt.datetime | None = None, count: int = 12) -> list[Month]:
    """The `count` months ending with the month of `last` (default: now), oldest first."""
    last = month_start((last or timezone.now()).astimezone(dt.UTC).date())
    first = add_months(last, -(count - 1))
    end = add_months(last, 1)
    by_start = {add_months(first, i): Month(start=add_months(first, i)) for i in range(count)}
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVITY_SQL, [first, end])
        for month, code, event, purpose, package, cents, payments in cursor.fetchall():
            m = by_start[month.replace(tzinfo=dt.UTC)]
            cents = int(cents)
            if code == AccountCode.CASH:
                if event == "card_fee":
                    pass  # counted on processor_fees
                elif cents > 0:
                    m.card_in[purpose or "other"] = m.card_in.get(purpose or "other", 0) + cents
                    if package:
                        m.packages[package] = m.packages.get(package, 0) + cents
                    if event == "essential_paid":
                        m.essential_invoices += payments
                else:
                    m.refunds_paid += -cents
            elif code == AccountCode.PROCESSOR_FEES:
                m.card_fees += cents
            elif code == AccountCode.REFUNDS:
                m.not_recovered += cents
            elif code in REVENUE_ACCOUNTS:
                m.revenue[code] = m.revenue.get(code, 0) + _natural(code, cents)
        cursor.execute(_BALANCES_SQL, [end])
        running: dict[str, int] = defaultdict(int)
        changes = defaultdict(dict)
        for month, code, cents in cursor.fetchall():
            changes[month.replace(tzinfo=dt.UTC)][code] = _natural(code, int(cents))
    for month in sorted(changes):
        if month >= first:
            break
        for code, cents in changes[month].items():
            running[code] += cents
    for start, m in sorted(by_start.items()):
        for code, cents in changes.get(start, {}).items():
            running[code] += cents
        m.deferred_revenue = running[AccountCode.DEFERRED_REVENUE]
        m.artist_payable = running[AccountCode.ARTIST_PAYABLE]
    return [by_start[start] for start in sorted(by_start)]


def subscribers_now() -> tuple[int, int]:
    """Active Essential subscribers and the monthly recurring revenue they make (cents)."""
    from subscriptions.models import BENEFIT_STATUSES, Subscription

    count = Subscription.objects.filter(status__in=BENEFIT_STATUSES).values("user").distinct()
    active = count.count()
    return active, active * ESSENTIAL_PRICE_CENTS
