"""Reads of the credit ledger."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from credits.models import CreditLot, CreditPackage, LedgerEntry
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


def history(user) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(user_id=user.pk).order_by("-created_at", "-id")


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
    return BalanceExplained(
        balance=balance(user),
        cached=cached,
        entries_sum=entries_sum,
        lots=lots,
        entries=entries,
        lots_remaining=sum(lot.remaining for lot in lots),
    )
