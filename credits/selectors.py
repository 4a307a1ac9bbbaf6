"""Reads of the credit ledger."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from credits.models import CreditLot, CreditPackage, EntryKind, LedgerEntry, LotSource
from credits.services import SPEND_ORDER


def _now() -> dt.datetime:
    return timezone.now()


def balance(user) -> int:
    """Spendable credits: the cached balance less remainders already past their date.

    One indexed query; the hourly expiry job (or the next spend) writes those
    remainders off in the ledger.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE((SELECT balance FROM credits_wallet WHERE user_id = %(u)s), 0)"
            " - COALESCE((SELECT SUM(remaining) FROM credits_lot WHERE user_id = %(u)s"
            "   AND remaining > 0 AND expires_at <= %(now)s), 0)",
            {"u": user.pk, "now": _now()},
        )
        return cursor.fetchone()[0]


def live_lots(user) -> QuerySet[CreditLot]:
    """The user's lots that still hold spendable credits, in spend order."""
    return (
        CreditLot.objects.filter(user_id=user.pk, remaining__gt=0)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=_now()))
        .order_by(*SPEND_ORDER)
    )


def history(user, *, show: str = "") -> QuerySet[LedgerEntry]:
    """The user's entries, newest first; `show` narrows them to one HISTORY_FILTERS group."""
    entries = LedgerEntry.objects.filter(user_id=user.pk)
    if show:
        entries = entries.filter(HISTORY_FILTERS[show][1])
    return entries.order_by("-created_at", "-id")


# The credits page's history filters: (label, which entries).
HISTORY_FILTERS = {
    "purchases": ("Purchases", Q(kind=EntryKind.GRANT, lots__source=LotSource.PACKAGE)),
    "spending": ("Spending", Q(kind=EntryKind.SPEND)),
    "expiry": ("Expiry", Q(kind=EntryKind.EXPIRE)),
    "refunds": ("Refunds", Q(kind__in=[EntryKind.REFUND, EntryKind.VOID])),
}

# Credits that expire this soon are flagged: the header, the credits page, the e-mail.
EXPIRY_WARNING = dt.timedelta(days=3)


@dataclass(frozen=True)
class HeaderCredits:
    balance: int
    expiring: int  # credits that expire within EXPIRY_WARNING
    expiring_at: dt.datetime | None  # the soonest of those expiries


# The header's figures as one row of (balance, expiring, expiring_at); parameters from
# header_credits_params. Other reads may select it beside theirs in one round trip.
HEADER_CREDITS_SQL = (
    "SELECT COALESCE((SELECT balance FROM credits_wallet WHERE user_id = %(u)s), 0)"
    " - COALESCE(SUM(remaining) FILTER (WHERE expires_at <= %(now)s), 0),"
    " COALESCE(SUM(remaining) FILTER (WHERE expires_at > %(now)s), 0),"
    " MIN(expires_at) FILTER (WHERE expires_at > %(now)s)"
    " FROM credits_lot WHERE user_id = %(u)s AND remaining > 0"
    " AND expires_at <= %(soon)s"
)


def header_credits_params(user) -> dict:
    return {"u": user.pk, **expiry_window()}


def expiry_window() -> dict:
    """HEADER_CREDITS_SQL's parameters but the user's (%(u)s)."""
    now = _now()
    return {"now": now, "soon": now + EXPIRY_WARNING}


def header_credits(user) -> HeaderCredits:
    """The balance and the credits about to expire, in one indexed query (every page)."""
    with connection.cursor() as cursor:
        cursor.execute(HEADER_CREDITS_SQL, header_credits_params(user))
        return HeaderCredits(*cursor.fetchone())


def month_start(moment: dt.datetime) -> dt.datetime:
    """00:00 UTC on the 1st of the moment's month."""
    return moment.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(moment: dt.datetime) -> dt.datetime:
    start = month_start(moment)
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


# Credits spent, net of what was given back: a spend's refund (a failed generation, a
# refunded purchase) counts against the spend, in the spend's own month.
_SPENT_SQL = """
SELECT COALESCE(SUM(-s.amount), 0) - COALESCE(SUM(r.amount), 0)
FROM credits_ledger_entry s
LEFT JOIN credits_ledger_entry r ON r.reverses_id = s.id
WHERE s.user_id = %(u)s AND s.kind = 'spend' AND s.created_at >= %(since)s
"""

_SPENT_BY_MONTH_SQL = """
SELECT date_trunc('month', s.created_at AT TIME ZONE 'UTC') AS month,
       SUM(-s.amount) - COALESCE(SUM(r.amount), 0)
FROM credits_ledger_entry s
LEFT JOIN credits_ledger_entry r ON r.reverses_id = s.id
WHERE s.user_id = %(u)s AND s.kind = 'spend' AND s.created_at >= %(since)s
GROUP BY 1 ORDER BY 1
"""


def credits_spent(user, *, since: dt.datetime | None = None) -> int:
    """Credits the user spent (since a moment), by the ledger, net of give-backs."""
    with connection.cursor() as cursor:
        cursor.execute(
            _SPENT_SQL, {"u": user.pk, "since": since or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)}
        )
        return int(cursor.fetchone()[0])


@dataclass(frozen=True)
class MonthSpent:
    start: dt.datetime
    credits: int


def spent_by_month(user, *, months: int = 12) -> list[MonthSpent]:
    """Credits used in each of the last `months` calendar months (UTC), oldest first."""
    starts = [month_start(_now())]
    for _ in range(months - 1):
        previous = starts[0] - dt.timedelta(days=1)
        starts.insert(0, month_start(previous))
    with connection.cursor() as cursor:
        cursor.execute(_SPENT_BY_MONTH_SQL, {"u": user.pk, "since": starts[0]})
        found = {month.date(): int(total) for month, total in cursor.fetchall()}
    return [MonthSpent(start, found.get(start.date(), 0)) for start in starts]


def expiring_soon(user) -> QuerySet[CreditLot]:
    """Live lots that expire within EXPIRY_WARNING, soonest first."""
    now = _now()
    return CreditLot.objects.filter(
        user_id=user.pk, remaining__gt=0, expires_at__gt=now, expires_at__lte=now + EXPIRY_WARNING
    ).order_by(*SPEND_ORDER)


def purchasable_packages() -> QuerySet[CreditPackage]:
    return CreditPackage.objects.filter(is_purchasable=True)


@dataclass(frozen=True)
class Discrepancy:
    user_id: int
    email: str
    problem: str


_AUDIT_SQL = """
WITH e AS (SELECT user_id, SUM(amount) AS total FROM credits_ledger_entry GROUP BY user_id),
     l AS (SELECT user_id, SUM(remaining) AS total,
                  COUNT(*) FILTER (WHERE remaining < 0 OR remaining > amount) AS bad
           FROM credits_lot GROUP BY user_id),
     w AS (SELECT user_id, balance FROM credits_wallet),
     k AS (SELECT e.user_id, COUNT(*) AS bad
           FROM credits_ledger_entry e
           LEFT JOIN (SELECT entry_id, SUM(amount) AS total
                      FROM credits_ledger_entry_lot GROUP BY entry_id) x ON x.entry_id = e.id
           WHERE COALESCE(x.total, 0) <> e.amount GROUP BY e.user_id)
SELECT u.id, u.email, COALESCE(e.total, 0), COALESCE(w.balance, 0), COALESCE(l.total, 0),
       COALESCE(l.bad, 0), COALESCE(k.bad, 0)
FROM accounts_user u
LEFT JOIN e ON e.user_id = u.id
LEFT JOIN l ON l.user_id = u.id
LEFT JOIN w ON w.user_id = u.id
LEFT JOIN k ON k.user_id = u.id
WHERE COALESCE(e.total, 0) <> COALESCE(w.balance, 0)
   OR COALESCE(e.total, 0) <> COALESCE(l.total, 0)
   OR COALESCE(w.balance, 0) < 0
   OR COALESCE(l.bad, 0) > 0
   OR COALESCE(k.bad, 0) > 0
ORDER BY u.id
"""


def ledger_discrepancies() -> list[Discrepancy]:
    """Users whose entries, lots and cached balance disagree, or who hold a bad lot."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute(_AUDIT_SQL)
        for user_id, email, entries, cached, lots, bad_lots, bad_links in cursor.fetchall():
            problems = []
            if entries != cached:
                problems.append(f"entries sum to {entries} but the balance says {cached}")
            if entries != lots:
                problems.append(f"entries sum to {entries} but lots hold {lots}")
            if cached < 0:
                problems.append(f"negative balance {cached}")
            if bad_lots:
                problems.append(f"{bad_lots} lot(s) out of range")
            if bad_links:
                problems.append(f"{bad_links} entr(y/ies) whose lot parts do not add up")
            found.append(Discrepancy(user_id, email, "; ".join(problems)))
    return found


@dataclass
class BalanceExplained:
    """Everything that makes a user's balance, for the admin's "explain a balance"."""

    balance: int  # spendable now
    cached: int  # the wallet row
    entries_sum: int
    lots: list
    entries: list
    lots_remaining: int

    @property
    def adds_up(self) -> bool:
        return self.entries_sum == self.cached == self.lots_remaining


def explain_balance(user, *, entries_limit: int = 200) -> BalanceExplained:
    """The user's balance, lots (with cost basis) and the entries that make it."""
    from django.db.models import Sum

    from credits.models import Wallet

    cached = Wallet.objects.filter(user_id=user.pk).values_list("balance", flat=True).first() or 0
    lots = list(
        CreditLot.objects.filter(user_id=user.pk)
        .select_related("package")
        .order_by("-created_at", "-id")
    )
    entries_sum = (
        LedgerEntry.objects.filter(user_id=user.pk).aggregate(total=Sum("amount"))["total"] or 0
    )
    entries = list(
        LedgerEntry.objects.filter(user_id=user.pk)
        .select_related("staff_user")
        .order_by("-created_at", "-id")[:entries_limit]
    )
    from credits.reasons import describe

    describe(entries)  # what the user's own history calls each entry
    return BalanceExplained(
        balance=balance(user),
        cached=cached,
        entries_sum=entries_sum,
        lots=lots,
        entries=entries,
        lots_remaining=sum(lot.remaining for lot in lots),
    )
