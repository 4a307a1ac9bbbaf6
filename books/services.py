"""Writing to the books: one function, `post`, that every posting goes through.

Postings themselves live with the business event they account for (credits,
payments, subscriptions, purchases) and read like the books: a list of (account,
cents) lines that visibly sum to zero, under a key derived from their cause. `post`
joins the caller's database transaction, so a posting commits with the change it
accounts for or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from books.models import NORMAL_SIDE, Account, AccountCode, JournalTransaction

Line = tuple[Account | str, int]

# One statement writes the transaction and its lines. A key already used inserts
# nothing (ON CONFLICT waits for a concurrent twin's outcome, then skips). Lines name
# their accounts by key; a line whose account does not exist would be dropped, so the
# caller compares the count.
_POST_SQL = """
WITH t AS (
    INSERT INTO books_journal_transaction
        (idempotency_key, event, cause, cause_ref, staff_user_id, reason, memo,
         payment_id, ledger_entry_id, created_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
)
INSERT INTO books_journal_line (transaction_id, account_id, amount_cents)
SELECT t.id, a.id, v.amount
FROM t
CROSS JOIN unnest(%s::text[], %s::bigint[]) WITH ORDINALITY AS v (key, amount, n)
JOIN books_account a ON a.key = v.key
ORDER BY v.n
RETURNING transaction_id
"""


def _now() -> dt.datetime:
    return timezone.now()


def account_key(account: Account | str) -> str:
    if isinstance(account, Account):
        return account.key
    if account == AccountCode.ARTIST_PAYABLE or account not in NORMAL_SIDE:
        raise ValueError(f"{account!r} is not a fixed account: use artist_account(user).")
    return str(account)


def post(
    *,
    key: str,
    event: str,
    lines: Sequence[Line],
    cause: str,
    cause_ref: str = "",
    staff_user=None,
    reason: str = "",
    memo: str = "",
    payment=None,
    ledger_entry=None,
    created_at: dt.datetime | None = None,
) -> JournalTransaction | None:
    """Post one balanced transaction under `key`, once; return it.

    Zero lines are dropped; when none is left nothing is written and None returned.
    Raises ValueError if the lines do not sum to zero. A key used before returns the
    earlier transaction and writes nothing.
    """
    legs: dict[str, int] = {}
    for account, cents in lines:
        if isinstance(cents, bool) or not isinstance(cents, int):
            raise TypeError(f"Journal amounts are whole cents, got {cents!r}")
        if cents:
            k = account_key(account)
            legs[k] = legs.get(k, 0) + cents
    legs = {k: cents for k, cents in legs.items() if cents}
    if sum(legs.values()) != 0:
        raise ValueError(f"Posting {key!r} does not balance: {legs}")
    if not legs:
        return None
    created_at = created_at or _now()
    # No savepoint: a posting is one statement, and nobody recovers from its failure
    # inside the change it accounts for (two round trips saved per spend).
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            _POST_SQL,
            [
                key,
                event,
                cause,
                cause_ref[:200],
                getattr(staff_user, "pk", staff_user),
                reason,
                memo[:300],
                getattr(payment, "pk", payment),
                getattr(ledger_entry, "pk", ledger_entry),
                created_at,
                list(legs),
                list(legs.values()),
            ],
        )
        written = cursor.fetchall()
        if not written:
            earlier = JournalTransaction.objects.filter(idempotency_key=key).first()
            if earlier is None:  # the insert wrote no lines: an account is missing
                raise Account.DoesNotExist(f"Posting {key!r} names an unknown account: {legs}")
            return earlier
        if len(written) != len(legs):
            raise Account.DoesNotExist(f"Posting {key!r} names an unknown account: {legs}")
    return JournalTransaction(
        id=written[0][0],
        idempotency_key=key,
        event=event,
        cause=cause,
        cause_ref=cause_ref[:200],
        staff_user_id=getattr(staff_user, "pk", staff_user),
        reason=reason,
        memo=memo[:300],
        payment_id=getattr(payment, "pk", payment),
        ledger_entry_id=getattr(ledger_entry, "pk", ledger_entry),
        created_at=created_at,
    )


def artist_account(user) -> Account:
    """The artist's `artist_payable` account, made on first use."""
    key = f"{AccountCode.ARTIST_PAYABLE}:{user.pk}"
    account = Account.objects.filter(key=key).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(
                key=key,
                code=AccountCode.ARTIST_PAYABLE,
                artist_id=user.pk,
                normal_side=NORMAL_SIDE[AccountCode.ARTIST_PAYABLE],
            )
    except IntegrityError:  # made concurrently
        return Account.objects.get(key=key)


def ensure_fixed_accounts() -> None:
    """Create the fixed accounts that are missing (migration 0001 seeds them)."""
    for code, side in NORMAL_SIDE.items():
        if code != AccountCode.ARTIST_PAYABLE:
            Account.objects.get_or_create(
                key=str(code), defaults={"code": code, "normal_side": side}
            )
