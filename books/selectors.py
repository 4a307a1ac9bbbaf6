"""Reads of the books: balances, the report, and the checks of the nightly audit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection

from books.models import NORMAL_SIDE, AccountCode, NormalSide

REPORT_ACCOUNTS = [str(code) for code in AccountCode]


def _natural(code: str, debit_sum: int) -> int:
    return debit_sum if NORMAL_SIDE[code] == NormalSide.DEBIT else -debit_sum


def account_balances(
    *, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[str, int]:
    """Every account code's balance in cents, natural sign, artists' payables summed.

    With `start` / `end`, only transactions created in [start, end) count.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.code, COALESCE(SUM(l.amount_cents), 0)"
            " FROM books_journal_line l"
            " JOIN books_account a ON a.id = l.account_id"
            " JOIN books_journal_transaction t ON t.id = l.transaction_id"
            " WHERE (%(start)s::timestamptz IS NULL OR t.created_at >= %(start)s)"
            "   AND (%(end)s::timestamptz IS NULL OR t.created_at < %(end)s)"
            " GROUP BY a.code",
            {"start": start, "end": end},
        )
        sums = dict(cursor.fetchall())
    return {code: _natural(code, int(sums.get(code, 0))) for code in REPORT_ACCOUNTS}


def account_balance(code: str) -> int:
    return account_balances()[code]


def artist_payable(user) -> int:
    """What we owe the artist, in cents (positive: we owe them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(l.amount_cents), 0) FROM books_journal_line l"
            " JOIN books_account a ON a.id = l.account_id WHERE a.artist_id = %s",
            [user.pk],
        )
        return -int(cursor.fetchone()[0])


def lines_sum() -> int:
    """The sum of every line ever posted: 0 when the books balance."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(SUM(amount_cents), 0) FROM books_journal_line")
        return int(cursor.fetchone()[0])


def report(*, start: dt.datetime | None = None, end: dt.datetime | None = None) -> dict:
    """What `books_report --json` prints."""
    return {
        "accounts": account_balances(start=start, end=end),
        "balanced": not book_violations(quick=True),
    }


@dataclass(frozen=True)
class Violation:
    check: str
    subject: str
    problem: str

    def as_dict(self) -> dict:
        return {"check": self.check, "subject": self.subject, "problem": self.problem}


def book_violations(*, quick: bool = False) -> list[Violation]:
    """Everything that is off in the books and their joint with the credit ledger.

    - every transaction's lines sum to zero, and it has lines;
    - deferred revenue equals the lots' unreleased cost (the joint);
    - every lot's unreleased cost lies within 0..cost and equals its cost less the
      releases recorded on its lot links (so any release can be traced);
    - an empty lot has released all of its cost.
    `quick` stops after the first two (what `books_report` calls "balanced").
    """
    found: list[Violation] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.id, t.idempotency_key, COALESCE(SUM(l.amount_cents), 0), COUNT(l.id)"
            " FROM books_journal_transaction t"
            " LEFT JOIN books_journal_line l ON l.transaction_id = t.id"
            " GROUP BY t.id HAVING COALESCE(SUM(l.amount_cents), 0) <> 0 OR COUNT(l.id) = 0"
            " ORDER BY t.id"
        )
        for pk, key, total, count in cursor.fetchall():
            problem = "has no lines" if not count else f"lines sum to {total} cents, not 0"
            found.append(Violation("transaction_balanced", f"transaction {pk} ({key})", problem))
        deferred = account_balance(AccountCode.DEFERRED_REVENUE)
        cursor.execute("SELECT COALESCE(SUM(cost_left_cents), 0) FROM credits_lot")
        unreleased = int(cursor.fetchone()[0])
        if deferred != unreleased:
            found.append(
                Violation(
                    "deferred_revenue_joint",
                    "deferred_revenue",
                    f"deferred revenue is {deferred} cents but the lots' unreleased cost is "
                    f"{unreleased} cents (difference {deferred - unreleased})",
                )
            )
        if quick:
            return found
        cursor.execute(
            "SELECT lot.id, lot.user_id, lot.cost_cents, lot.cost_left_cents, lot.remaining,"
            "       COALESCE(x.total, 0)"
            " FROM credits_lot lot"
            " LEFT JOIN (SELECT lot_id, SUM(cost_cents) AS total"
            "            FROM credits_ledger_entry_lot GROUP BY lot_id) x ON x.lot_id = lot.id"
            " WHERE lot.cost_left_cents < 0 OR lot.cost_left_cents > lot.cost_cents"
            "    OR COALESCE(x.total, 0) <> lot.cost_left_cents"
            "    OR (lot.remaining = 0 AND lot.cost_left_cents <> 0)"
            " ORDER BY lot.id"
        )
        for pk, user_id, cost, left, remaining, traced in cursor.fetchall():
            problems = []
            if left < 0 or left > cost:
                problems.append(f"unreleased cost {left} outside 0..{cost}")
            if traced != left:
                problems.append(f"lot links trace {traced} cents unreleased, the lot says {left}")
            if remaining == 0 and left != 0:
                problems.append(f"empty but {left} cents of its cost never released")
            found.append(
                Violation("lot_cost_basis", f"lot {pk} (user {user_id})", "; ".join(problems))
            )
    return found
