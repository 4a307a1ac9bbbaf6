"""State changes of the credit ledger (DESIGN.md section 1, "Credits").

Every function here runs in one transaction and locks the user's wallet row first.
That single lock order (wallet, then that user's lots; several wallets in user-id
order) is what keeps concurrent spends, grants and expiry from overdrawing, losing
updates or deadlocking. Every change writes an append-only ledger entry whose
unique idempotency key makes a repeated call return the earlier result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from credits.exceptions import AlreadyRefunded, InsufficientCredits
from credits.models import (
    Cause,
    CreditLot,
    CreditPackage,
    EntryKind,
    LedgerEntry,
    LotSource,
    Wallet,
)

SIGNUP_PACKAGE_SLUG = "free"

# Spending burns the soonest-expiring lots first, never-expiring lots last, oldest first.
SPEND_ORDER = (F("expires_at").asc(nulls_last=True), "created_at", "id")

# The hot path (wallet lock, key lookup, lots, entry, links, wallet) is plain SQL on
# Django's connection: the same statements the ORM would send, without building each
# query in Python every time (that cost several times the database's own work).
# Instances are still made with Model.from_db()/the model's constructor, so callers
# get the same objects as before.
_SPEND_ORDER_SQL = "expires_at ASC NULLS LAST, created_at ASC, id ASC"  # = SPEND_ORDER


def _columns(model) -> tuple[list[str], str]:
    fields = model._meta.concrete_fields
    return [f.attname for f in fields], ", ".join(f.column for f in fields)


# The column lists come from the models, never from input.
_WALLET_FIELDS, _WALLET_COLUMNS = _columns(Wallet)
_LOT_FIELDS, _LOT_COLUMNS = _columns(CreditLot)
_LOCK_WALLET_SQL = f"SELECT {_WALLET_COLUMNS} FROM credits_wallet WHERE user_id = %s FOR UPDATE"  # noqa: S608
_LOCK_LOTS_SQL = (
    f"SELECT {_LOT_COLUMNS} FROM credits_lot WHERE user_id = %s AND remaining > 0"  # noqa: S608
    f" ORDER BY {_SPEND_ORDER_SQL} FOR UPDATE"
)
_INSERT_ENTRY_SQL = (
    "INSERT INTO credits_ledger_entry (user_id, kind, amount, balance_after, idempotency_key,"
    " cause, cause_ref, staff_user_id, reason, memo, reverses_id, created_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)


def _now() -> dt.datetime:
    return timezone.now()


def _check_amount(amount, what: str) -> None:
    # bool is an int subclass, and a float would be truncated differently in
    # different places: refuse both before anything changes.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"{what} must be a whole number of credits, got {amount!r}")
    if amount <= 0:
        raise ValueError(f"{what} must be a positive number of credits.")


def _write_off_due(wallet: Wallet, now: dt.datetime) -> None:
    """Expire the locked user's lots past their date, so a change's balance_after is
    the spendable balance (the hourly job would do the same, a little later)."""
    if CreditLot.objects.filter(
        user_id=wallet.user_id, remaining__gt=0, expires_at__lte=now
    ).exists():
        _expire_locked_users([wallet.user_id], now)
        wallet.refresh_from_db(fields=["balance"])


def _same_cause(entry: LedgerEntry, *, user_id: int, kinds: tuple[str, ...]) -> LedgerEntry:
    """An earlier entry with our key must be the same change, not a key collision."""
    if entry.user_id != user_id or entry.kind not in kinds:
        raise ValueError(
            f"Idempotency key {entry.idempotency_key!r} was already used for another change."
        )
    return entry


def _lock_wallet(user_id: int) -> Wallet:
    """Lock (creating if needed) the user's wallet row: the first lock of every change."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_WALLET_SQL, [user_id])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                "INSERT INTO credits_wallet (user_id, balance, updated_at) VALUES (%s, 0, now())"
                " ON CONFLICT (user_id) DO NOTHING",
                [user_id],
            )
            cursor.execute(_LOCK_WALLET_SQL, [user_id])
            row = cursor.fetchone()
            if row is None:
                raise Wallet.DoesNotExist(f"No wallet for user {user_id}.")
    return Wallet.from_db(connection.alias, _WALLET_FIELDS, row)


def _entry_for(idempotency_key: str) -> LedgerEntry | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM credits_ledger_entry WHERE idempotency_key = %s", [idempotency_key]
        )
        row = cursor.fetchone()
    # Only a repeated call gets here with a row: load the earlier entry as the ORM would.
    return None if row is None else LedgerEntry.objects.get(pk=row[0])


def _record(
    wallet: Wallet,
    *,
    kind: str,
    amount: int,
    idempotency_key: str,
    lots: Iterable[tuple[CreditLot, int]],
    now: dt.datetime,
    cause: str,
    cause_ref: str = "",
    staff_user=None,
    reason: str = "",
    memo: str = "",
    reverses: LedgerEntry | None = None,
) -> LedgerEntry:
    """Apply `amount` to the locked wallet and write the entry with its lot links."""
    wallet.balance += amount
    entry = LedgerEntry(
        user_id=wallet.user_id,
        kind=kind,
        amount=amount,
        balance_after=wallet.balance,
        idempotency_key=idempotency_key,
        cause=cause,
        cause_ref=cause_ref,
        staff_user=staff_user,
        reason=reason,
        memo=memo[:300],
        reverses=reverses,
        created_at=now,
    )
    links = [(lot.pk, part) for lot, part in lots]
    wallet.updated_at = timezone.now()  # what auto_now would set on save()
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_ENTRY_SQL,
            [
                entry.user_id,
                entry.kind,
                entry.amount,
                entry.balance_after,
                entry.idempotency_key,
                entry.cause,
                entry.cause_ref,
                entry.staff_user_id,
                entry.reason,
                entry.memo,
                entry.reverses_id,
                entry.created_at,
            ],
        )
        entry.pk = cursor.fetchone()[0]
        entry._state.adding = False
        entry._state.db = connection.alias
        if links:
            cursor.execute(
                "INSERT INTO credits_ledger_entry_lot (entry_id, lot_id, amount)"
                " SELECT %s, lot_id, amount FROM unnest(%s::bigint[], %s::integer[])"
                " WITH ORDINALITY AS link (lot_id, amount, n) ORDER BY n",
                [entry.pk, [lot_id for lot_id, _ in links], [part for _, part in links]],
            )
        cursor.execute(
            "UPDATE credits_wallet SET balance = %s, updated_at = %s WHERE user_id = %s",
            [wallet.balance, wallet.updated_at, wallet.user_id],
        )
        if cursor.rowcount != 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")
    return entry


def grant(
    *,
    user,
    amount: int,
    source: str,
    idempotency_key: str,
    expires_at: dt.datetime | None = None,
    memo: str = "",
    package: CreditPackage | None = None,
    cost_cents: int | None = None,
    cause: str = Cause.SYSTEM,
    cause_ref: str = "",
    kind: str = EntryKind.GRANT,
    staff_user=None,
    reason: str = "",
) -> CreditLot:
    """Add a lot of `amount` credits; return it (the earlier lot if the key was used)."""
    _check_amount(amount, "A grant")
    with transaction.atomic():
        wallet = _lock_wallet(user.pk)
        now = _now()  # read after the lock, so entries are in balance order
        existing = CreditLot.objects.filter(grant_key=idempotency_key).first()
        if existing is not None:
            if existing.user_id != user.pk:
                raise ValueError(f"Idempotency key {idempotency_key!r} belongs to another user.")
            return existing
        _write_off_due(wallet, now)
        lot = CreditLot.objects.create(
            user_id=user.pk,
            amount=amount,
            remaining=amount,
            source=source,
            expires_at=expires_at,
            package=package,
            cost_cents=cost_cents,
            grant_key=idempotency_key,
            created_at=now,
        )
        _record(
            wallet,
            kind=kind,
            amount=amount,
            idempotency_key=idempotency_key,
            lots=[(lot, amount)],
            now=now,
            cause=cause,
            cause_ref=cause_ref,
            staff_user=staff_user,
            reason=reason,
            memo=memo,
        )
    return lot


def grant_signup_gift(*, user) -> CreditLot:
    """Give a new account the Free package's credits, once, never expiring."""
    package = CreditPackage.objects.get(slug=SIGNUP_PACKAGE_SLUG)
    return grant(
        user=user,
        amount=package.credits,
        source=LotSource.SIGNUP,
        idempotency_key=f"signup:{user.pk}",
        package=package,
        memo="Welcome gift",
    )


def spend(
    *,
    user,
    amount: int,
    reason: str,
    idempotency_key: str,
    memo: str = "",
    cause: str = Cause.USER,
    cause_ref: str = "",
) -> LedgerEntry:
    """Burn `amount` credits, soonest-expiring lots first; all or nothing.

    Raises InsufficientCredits (and changes nothing) when the balance cannot cover it.
    """
    _check_amount(amount, "A spend")
    with transaction.atomic():
        wallet = _lock_wallet(user.pk)
        now = _now()
        existing = _entry_for(idempotency_key)
        if existing is not None:
            return _same_cause(existing, user_id=user.pk, kinds=(EntryKind.SPEND,))
        return _burn(
            wallet,
            amount,
            now=now,
            kind=EntryKind.SPEND,
            idempotency_key=idempotency_key,
            cause=cause,
            cause_ref=cause_ref,
            reason=reason,
            memo=memo,
        )


def _burn(wallet: Wallet, amount: int, *, now: dt.datetime, **entry_fields) -> LedgerEntry:
    """Take `amount` from the locked wallet's live lots in spend order."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_LOTS_SQL, [wallet.user_id])
        lots = [CreditLot.from_db(connection.alias, _LOT_FIELDS, row) for row in cursor.fetchall()]
    if any(lot.expires_at is not None and lot.expires_at <= now for lot in lots):
        # Lots past their date are not spendable: expire them now, as the hourly job would.
        _expire_locked_users([wallet.user_id], now)
        wallet.refresh_from_db(fields=["balance"])
        lots = [lot for lot in lots if lot.expires_at is None or lot.expires_at > now]
    available = sum(lot.remaining for lot in lots)
    if available < amount:
        raise InsufficientCredits(requested=amount, available=available)
    touched: list[tuple[CreditLot, int]] = []
    left = amount
    for lot in lots:
        take = min(lot.remaining, left)
        lot.remaining -= take
        touched.append((lot, -take))
        left -= take
        if left == 0:
            break
    with connection.cursor() as cursor:
        if len(touched) == 1:
            lot = touched[0][0]
            cursor.execute(
                "UPDATE credits_lot SET remaining = %s WHERE id = %s", [lot.remaining, lot.pk]
            )
        else:
            cursor.execute(
                "UPDATE credits_lot AS lot SET remaining = v.remaining"
                " FROM unnest(%s::bigint[], %s::integer[]) AS v (id, remaining)"
                " WHERE lot.id = v.id",
                [[lot.pk for lot, _ in touched], [lot.remaining for lot, _ in touched]],
            )
    return _record(wallet, amount=-amount, lots=touched, now=now, **entry_fields)


# Credits given back after their original lot has expired stay usable this long.
REFUND_GRACE = dt.timedelta(days=7)


def _refund_expiry(original: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
    """A refunded credit keeps its lot's expiry, unless that has passed meanwhile:
    a give-back that is dead on arrival would be no give-back at all."""
    if original is None or original > now:
        return original
    return now + REFUND_GRACE


def refund(
    *,
    entry: LedgerEntry,
    idempotency_key: str,
    memo: str = "",
    cause: str = Cause.SYSTEM,
    cause_ref: str = "",
) -> LedgerEntry:
    """Give back the credits of a spend, once, as new lots with the original expiry
    (or REFUND_GRACE from now if that has passed)."""
    if entry.kind != EntryKind.SPEND:
        raise ValueError("Only a spend can be refunded.")
    with transaction.atomic():
        wallet = _lock_wallet(entry.user_id)
        now = _now()
        existing = _entry_for(idempotency_key)
        if existing is not None:
            return _same_cause(existing, user_id=entry.user_id, kinds=(EntryKind.REFUND,))
        earlier = LedgerEntry.objects.filter(reverses=entry).first()
        if earlier is not None:
            raise AlreadyRefunded(f"Spend {entry.pk} was refunded by entry {earlier.pk}.")
        _write_off_due(wallet, now)
        parts = []
        for link in entry.lot_links.select_related("lot").order_by("id"):
            given = -link.amount
            parts.append(
                (
                    CreditLot.objects.create(
                        user_id=entry.user_id,
                        amount=given,
                        remaining=given,
                        source=LotSource.REFUND,
                        expires_at=_refund_expiry(link.lot.expires_at, now),
                        grant_key=f"{idempotency_key}:lot:{link.lot_id}",
                        created_at=now,
                    ),
                    given,
                )
            )
        return _record(
            wallet,
            kind=EntryKind.REFUND,
            amount=-entry.amount,
            idempotency_key=idempotency_key,
            lots=parts,
            now=now,
            cause=cause,
            cause_ref=cause_ref,
            memo=memo,
            reverses=entry,
        )


def void_lot(
    *,
    lot: CreditLot,
    idempotency_key: str,
    reason: str,
    cause: str = Cause.SYSTEM,
    cause_ref: str = "",
    staff_user=None,
) -> LedgerEntry | None:
    """Remove a lot's unused remainder (e.g. its payment was refunded).

    Returns the void entry, or None when nothing was left to void. Credits already
    spent from the lot are not clawed back.
    """
    with transaction.atomic():
        wallet = _lock_wallet(lot.user_id)
        now = _now()
        existing = _entry_for(idempotency_key)
        if existing is not None:
            return _same_cause(existing, user_id=lot.user_id, kinds=(EntryKind.VOID,))
        lot = CreditLot.objects.select_for_update().get(pk=lot.pk)
        if lot.remaining == 0:
            return None
        _write_off_due(wallet, now)
        lot.refresh_from_db(fields=["remaining"])
        if lot.remaining == 0:  # it was past its date: expired, nothing left to void
            return None
        amount = lot.remaining
        lot.remaining = 0
        lot.save(update_fields=["remaining"])
        return _record(
            wallet,
            kind=EntryKind.VOID,
            amount=-amount,
            idempotency_key=idempotency_key,
            lots=[(lot, -amount)],
            now=now,
            cause=cause,
            cause_ref=cause_ref,
            staff_user=staff_user,
            reason=reason,
        )


def adjust(*, user, amount: int, staff_user, reason: str, idempotency_key: str) -> LedgerEntry:
    """A staff correction: add a never-expiring lot, or take credits in spend order."""
    if not reason.strip():
        raise ValueError("An adjustment needs a reason.")
    if staff_user is None or not staff_user.is_staff:
        raise PermissionError("Only staff can adjust credits.")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
        raise ValueError("An adjustment is a non-zero whole number of credits.")
    fields = {
        "kind": EntryKind.ADJUST,
        "cause": Cause.STAFF,
        "staff_user": staff_user,
        "reason": reason.strip(),
    }
    if amount > 0:
        lot = grant(
            user=user,
            amount=amount,
            source=LotSource.ADMIN,
            idempotency_key=idempotency_key,
            **fields,
        )
        return LedgerEntry.objects.get(idempotency_key=lot.grant_key)
    with transaction.atomic():
        wallet = _lock_wallet(user.pk)
        now = _now()
        existing = _entry_for(idempotency_key)
        if existing is not None:
            return _same_cause(existing, user_id=user.pk, kinds=(EntryKind.ADJUST,))
        return _burn(wallet, -amount, now=now, idempotency_key=idempotency_key, **fields)


# --- Expiry -----------------------------------------------------------------------

# Expire every due lot of the given (already locked) users in one statement: zero the
# remainders, write one entry and one lot link per lot with a running balance, and
# lower the wallets. Data-modifying CTEs all see the same snapshot, so `running`
# reads the wallet balances from before this statement's own update.
_EXPIRE_SQL = """
WITH due AS (
    SELECT id, user_id, remaining
    FROM credits_lot
    WHERE user_id = ANY(%(user_ids)s) AND remaining > 0 AND expires_at <= %(now)s
    ORDER BY user_id, id
    FOR UPDATE
),
burned AS (
    UPDATE credits_lot AS lot SET remaining = 0
    FROM due
    WHERE lot.id = due.id
      -- Redundant with `due`, but it lets the planner find the batch's lots through an
      -- index instead of merge-joining `due` against the whole primary key.
      AND lot.user_id = ANY(%(user_ids)s) AND lot.remaining > 0 AND lot.expires_at <= %(now)s
    RETURNING lot.id AS lot_id, lot.user_id, due.remaining AS expired
),
running AS (
    SELECT b.lot_id, b.user_id, b.expired, 'expire:lot:' || b.lot_id AS key,
           w.balance - SUM(b.expired) OVER (PARTITION BY b.user_id ORDER BY b.lot_id)
               AS balance_after
    FROM burned b JOIN credits_wallet w ON w.user_id = b.user_id
    WHERE w.user_id = ANY(%(user_ids)s)  -- the batch's wallets, not a scan of all of them
),
entries AS (
    INSERT INTO credits_ledger_entry
        (user_id, kind, amount, balance_after, idempotency_key, cause, cause_ref,
         reason, memo, created_at)
    SELECT user_id, 'expire', -expired, balance_after, key, 'task', 'expire_due',
           '', 'Unused credits expired', %(now)s
    FROM running
    RETURNING id, idempotency_key
),
links AS (
    INSERT INTO credits_ledger_entry_lot (entry_id, lot_id, amount)
    SELECT e.id, r.lot_id, -r.expired
    FROM entries e JOIN running r ON r.key = e.idempotency_key
),
wallets AS (
    UPDATE credits_wallet AS w SET balance = w.balance - t.total, updated_at = %(now)s
    FROM (SELECT user_id, SUM(expired) AS total FROM burned GROUP BY user_id) t
    WHERE w.user_id = t.user_id
)
SELECT count(*) FROM burned
"""


def _expire_locked_users(user_ids: Sequence[int], now: dt.datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_EXPIRE_SQL, {"user_ids": list(user_ids), "now": now})
        return cursor.fetchone()[0]


def expire_due(
    *, now: dt.datetime | None = None, batch_size: int = 20_000, workers: int | None = None
) -> int:
    """Expire the unused remainder of every lot past its date; return how many lots.

    Works in batches of users, each batch one transaction that locks the users'
    wallets in id order (the same order as every other change) before touching their
    lots. Safe to run twice or concurrently: an expired lot has nothing left, so a
    second run finds nothing to do.

    With `workers` > 1 (default: the CREDITS_EXPIRE_WORKERS setting) the users are
    split by id into disjoint sets, each expired on its own database connection: no
    two workers ever want the same wallet, so they cannot deadlock. Inside an outer
    transaction (whose rows other connections cannot see) it always runs alone.
    """
    now = now or _now()
    workers = workers or settings.CREDITS_EXPIRE_WORKERS
    if workers <= 1 or connection.in_atomic_block:
        return _expire_share(now, batch_size, workers=1, share=0)

    def run(share: int) -> int:
        try:
            return _expire_share(now, batch_size, workers=workers, share=share)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(run, range(workers)))


def _expire_share(now: dt.datetime, batch_size: int, *, workers: int, share: int) -> int:
    """Expire the due lots of the users whose id % workers == share."""
    expired = 0
    after_user_id = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT DISTINCT user_id FROM ("
                    "  SELECT user_id FROM credits_lot"
                    "  WHERE user_id > %s AND remaining > 0 AND expires_at <= %s"
                    "    AND user_id %% %s = %s"
                    "  ORDER BY user_id LIMIT %s) AS batch ORDER BY user_id",
                    [after_user_id, now, workers, share, batch_size],
                )
                user_ids = [row[0] for row in cursor.fetchall()]
                if not user_ids:
                    return expired
                cursor.execute(
                    "SELECT user_id FROM credits_wallet WHERE user_id = ANY(%s)"
                    " ORDER BY user_id FOR UPDATE",
                    [user_ids],
                )
            expired += _expire_locked_users(user_ids, now)
        after_user_id = user_ids[-1]


def rebuild_balance(*, user) -> int:
    """Recompute the cached balance from the ledger entries; return it."""
    with transaction.atomic():
        wallet = _lock_wallet(user.pk)
        total = LedgerEntry.objects.filter(user_id=user.pk).aggregate(
            total=Coalesce(Sum("amount"), 0)
        )["total"]
        if wallet.balance != total:
            wallet.balance = total
            wallet.save(update_fields=["balance", "updated_at"])
        return total
