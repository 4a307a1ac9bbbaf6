"""State changes of the credit ledger (DESIGN.md section 1, "Credits").

Every function here runs in one transaction and locks the user's wallet row first.
That single lock order (wallet, then that user's lots; several wallets in user-id
order) is what keeps concurrent spends, grants and expiry from overdrawing, losing
updates or deadlocking. Every change writes an append-only ledger entry whose
unique idempotency key makes a repeated call return the earlier result.

Credits carry money (DESIGN.md, "the books"): a paid lot knows its cost, and every
burn releases its share of it (floor per burn, the last credit takes the rest),
recorded on the lot link. The release is posted to the books in the same
transaction: a spend on generation to `revenue_usage`, an expiry or a void to
`revenue_breakage`, unless the caller (a fan purchase, a package refund) posts it as
part of its own transaction (`post_release=False`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from books import money
from books import services as books
from books.models import AccountCode, JournalCause
from credits.exceptions import AlreadyRefunded, IdempotencyConflict, InsufficientCredits
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


def _book_key(ledger_key: str) -> str:
    """The books' key for the money side of a ledger entry: the same cause."""
    return f"books:{ledger_key}"


def _post_release(
    entry: LedgerEntry, *, to: str, event: str, memo: str, staff_user=None, reason: str = ""
) -> None:
    """Move the cost a burn released out of deferred revenue, into account `to`."""
    cents = entry.released_cents
    books.post(
        key=_book_key(entry.idempotency_key),
        event=event,
        lines=[(AccountCode.DEFERRED_REVENUE, cents), (to, -cents)],
        cause=JournalCause.STAFF if staff_user else JournalCause.LEDGER,
        cause_ref=entry.idempotency_key,
        staff_user=staff_user,
        reason=reason,
        memo=memo,
        ledger_entry=entry,
        created_at=entry.created_at,
    )


def _with_costs(entry: LedgerEntry) -> LedgerEntry:
    """Set `released_cents` / `returned_cents` on an entry loaded from the database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(-cost_cents) FILTER (WHERE cost_cents < 0), 0),"
            " COALESCE(SUM(cost_cents) FILTER (WHERE cost_cents > 0), 0)"
            " FROM credits_ledger_entry_lot WHERE entry_id = %s",
            [entry.pk],
        )
        entry.released_cents, entry.returned_cents = (int(v) for v in cursor.fetchone())
    return entry


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
        raise IdempotencyConflict(
            f"Idempotency key {entry.idempotency_key!r} was already used for another change."
        )
    return _with_costs(entry)


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


def lock_wallet(*, user_id: int) -> None:
    """Lock the user's wallet for the rest of the caller's transaction: the first lock
    of every change of that user's credits. A caller that reads the user's lots before
    changing them (a package refund reading the lots given back from its lot) takes it
    first, so no give-back or spend can slip in between its read and its change."""
    _lock_wallet(user_id)


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
    lots: Iterable[tuple[CreditLot, int, int]],
    now: dt.datetime,
    cause: str,
    cause_ref: str = "",
    staff_user=None,
    reason: str = "",
    memo: str = "",
    reverses: LedgerEntry | None = None,
) -> LedgerEntry:
    """Apply `amount` to the locked wallet and write the entry with its lot links.

    `lots` holds (lot, credits, cost): the signed change of each lot's credits and of
    its unreleased cost. The entry comes back with `released_cents` (cost the burns
    released) and `returned_cents` (cost the new lots carry).
    """
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
    links = [(lot.pk, part, cost) for lot, part, cost in lots]
    entry.released_cents = -sum(cost for _, _, cost in links if cost < 0)
    entry.returned_cents = sum(cost for _, _, cost in links if cost > 0)
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
                "INSERT INTO credits_ledger_entry_lot (entry_id, lot_id, amount, cost_cents)"
                " SELECT %s, lot_id, amount, cost"
                " FROM unnest(%s::bigint[], %s::integer[], %s::integer[])"
                " WITH ORDINALITY AS link (lot_id, amount, cost, n) ORDER BY n",
                [
                    entry.pk,
                    [lot_id for lot_id, _, _ in links],
                    [part for _, part, _ in links],
                    [cost for _, _, cost in links],
                ],
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
    """Add a lot of `amount` credits; return it (the earlier lot if the key was used).

    `cost_cents` is what was paid for it (None or 0: a free or admin lot). The caller
    posts the money side (a paid package: cash against deferred revenue) in the same
    transaction.
    """
    _check_amount(amount, "A grant")
    cost_cents = cost_cents or 0
    if isinstance(cost_cents, bool) or not isinstance(cost_cents, int) or cost_cents < 0:
        raise ValueError(f"A lot's cost is a whole, non-negative number of cents: {cost_cents!r}")
    with transaction.atomic():
        wallet = _lock_wallet(user.pk)
        now = _now()  # read after the lock, so entries are in balance order
        existing = CreditLot.objects.filter(grant_key=idempotency_key).first()
        if existing is not None:
            if existing.user_id != user.pk:
                raise IdempotencyConflict(
                    f"Idempotency key {idempotency_key!r} belongs to another user."
                )
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
            cost_left_cents=cost_cents,
            grant_key=idempotency_key,
            created_at=now,
        )
        _record(
            wallet,
            kind=kind,
            amount=amount,
            idempotency_key=idempotency_key,
            lots=[(lot, amount, cost_cents)],
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
    post_release: bool = True,
) -> LedgerEntry:
    """Burn `amount` credits, soonest-expiring lots first; all or nothing.

    Raises InsufficientCredits (and changes nothing) when the balance cannot cover it.
    The entry's `released_cents` is the cost basis the burn released; it is posted
    from deferred revenue to `revenue_usage`, unless `post_release` is False: then the
    caller must post it (debiting deferred revenue) in the same transaction.
    """
    _check_amount(amount, "A spend")
    with transaction.atomic():
        wallet = _lock_wallet(user.pk)
        now = _now()
        existing = _entry_for(idempotency_key)
        if existing is not None:
            return _same_cause(existing, user_id=user.pk, kinds=(EntryKind.SPEND,))
        entry = _burn(
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
        if post_release:
            _post_release(
                entry, to=AccountCode.REVENUE_USAGE, event="credits_used", memo=memo or reason
            )
        return entry


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
    return _take(wallet, _plan(lots, amount), now=now, **entry_fields)


def _plan(lots: Sequence[CreditLot], amount: int) -> list[tuple[CreditLot, int, int]]:
    """Burn up to `amount` from `lots` in their order: (lot, -credits, -released cost)."""
    touched: list[tuple[CreditLot, int, int]] = []
    left = amount
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take == 0:
            continue
        released = money.release_for_burn(
            cost_left=lot.cost_left_cents, remaining=lot.remaining, burned=take
        )
        lot.remaining -= take
        lot.cost_left_cents -= released
        touched.append((lot, -take, -released))
        left -= take
    return touched


def _take(
    wallet: Wallet, touched: list[tuple[CreditLot, int, int]], *, now: dt.datetime, **entry_fields
) -> LedgerEntry:
    """Write a planned burn: the lots' new remainders and costs, then the entry."""
    with connection.cursor() as cursor:
        if len(touched) == 1:
            lot = touched[0][0]
            cursor.execute(
                "UPDATE credits_lot SET remaining = %s, cost_left_cents = %s WHERE id = %s",
                [lot.remaining, lot.cost_left_cents, lot.pk],
            )
        else:
            cursor.execute(
                "UPDATE credits_lot AS lot"
                " SET remaining = v.remaining, cost_left_cents = v.cost_left"
                " FROM unnest(%s::bigint[], %s::integer[], %s::integer[])"
                "   AS v (id, remaining, cost_left)"
                " WHERE lot.id = v.id",
                [
                    [lot.pk for lot, _, _ in touched],
                    [lot.remaining for lot, _, _ in touched],
                    [lot.cost_left_cents for lot, _, _ in touched],
                ],
            )
    amount = sum(part for _, part, _ in touched)
    return _record(wallet, amount=amount, lots=touched, now=now, **entry_fields)


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
    post_return: bool = True,
) -> LedgerEntry:
    """Give back the credits of a spend, once, as new lots with the original expiry
    (or REFUND_GRACE from now if that has passed).

    Each new lot keeps the package and the released cost of the lot its credits came
    from (its `origin_lot`), so a later refund of that lot's payment voids them too.
    The entry's `returned_cents` is that cost, put back into deferred revenue out of
    `revenue_usage`, unless `post_return` is False (the caller posts it).
    """
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
            given, cost = -link.amount, -link.cost_cents
            parts.append(
                (
                    CreditLot.objects.create(
                        user_id=entry.user_id,
                        amount=given,
                        remaining=given,
                        source=LotSource.REFUND,
                        expires_at=_refund_expiry(link.lot.expires_at, now),
                        package_id=link.lot.package_id,
                        cost_cents=cost,
                        cost_left_cents=cost,
                        origin_lot_id=link.lot.origin_lot_id or link.lot_id,
                        grant_key=f"{idempotency_key}:lot:{link.lot_id}",
                        created_at=now,
                    ),
                    given,
                    cost,
                )
            )
        refund_entry = _record(
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
        if post_return and refund_entry.returned_cents:
            cents = refund_entry.returned_cents
            books.post(
                key=_book_key(idempotency_key),
                event="credits_given_back",
                lines=[(AccountCode.REVENUE_USAGE, cents), (AccountCode.DEFERRED_REVENUE, -cents)],
                cause=JournalCause.LEDGER,
                cause_ref=idempotency_key,
                memo=memo,
                ledger_entry=refund_entry,
                created_at=now,
            )
        return refund_entry


def lot_family(lot: CreditLot) -> list[CreditLot]:
    """A lot and the lots its credits were given back into (they share its payment)."""
    root_id = lot.origin_lot_id or lot.pk
    return list(CreditLot.objects.filter(Q(pk=root_id) | Q(origin_lot_id=root_id)))


def void_credits(
    *,
    lots: Sequence[CreditLot],
    amount: int | None,
    idempotency_key: str,
    reason: str,
    cause: str = Cause.SYSTEM,
    cause_ref: str = "",
    staff_user=None,
    post_release: bool = True,
) -> LedgerEntry | None:
    """Remove up to `amount` unused credits (None: all) from `lots`, in spend order.

    Returns the void entry, or None when nothing was left to void. Credits already
    spent are not clawed back. The released cost goes to `revenue_breakage` (the
    money is kept), unless `post_release` is False: a refund posts it itself.
    """
    lots = list(lots)
    if not lots:
        return None
    user_id = lots[0].user_id
    if any(lot.user_id != user_id for lot in lots):
        raise ValueError("A void touches one user's lots.")
    if amount is not None:
        _check_amount(amount, "A void")
    with transaction.atomic():
        wallet = _lock_wallet(user_id)
        now = _now()
        existing = _entry_for(idempotency_key)
        if existing is not None:
            return _same_cause(existing, user_id=user_id, kinds=(EntryKind.VOID,))
        if not CreditLot.objects.filter(pk__in=[lot.pk for lot in lots], remaining__gt=0).exists():
            return None  # spent or voided already: nothing to do, nothing to write
        _write_off_due(wallet, now)
        live = list(
            CreditLot.objects.select_for_update()
            .filter(pk__in=[lot.pk for lot in lots], remaining__gt=0)
            .order_by(*SPEND_ORDER)
        )
        wanted = sum(lot.remaining for lot in live) if amount is None else amount
        touched = _plan(live, wanted)
        if not touched:  # spent, expired or voided already: nothing left to void
            return None
        entry = _take(
            wallet,
            touched,
            now=now,
            kind=EntryKind.VOID,
            idempotency_key=idempotency_key,
            cause=cause,
            cause_ref=cause_ref,
            staff_user=staff_user,
            reason=reason,
        )
        if post_release:
            _post_release(
                entry,
                to=AccountCode.REVENUE_BREAKAGE,
                event="credits_voided",
                memo=reason,
                staff_user=staff_user,
                reason=reason if staff_user else "",
            )
        return entry


def void_lot(
    *,
    lot: CreditLot,
    idempotency_key: str,
    reason: str,
    cause: str = Cause.SYSTEM,
    cause_ref: str = "",
    staff_user=None,
    post_release: bool = True,
) -> LedgerEntry | None:
    """Remove a lot's whole unused remainder (see void_credits)."""
    return void_credits(
        lots=[lot],
        amount=None,
        idempotency_key=idempotency_key,
        reason=reason,
        cause=cause,
        cause_ref=cause_ref,
        staff_user=staff_user,
        post_release=post_release,
    )


def adjust(*, user, amount: int, staff_user, reason: str, idempotency_key: str) -> LedgerEntry:
    """A staff correction: add a never-expiring lot (free: it costs nothing), or take
    credits in spend order (the money they carried is kept, as breakage)."""
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
    try:
        return _adjust_once(user, amount, idempotency_key, fields, staff_user)
    except IntegrityError:
        # The same key applied for another user at the same moment (their wallet lock
        # is not ours): the one that committed stands, and this is its resubmit.
        existing = _entry_for(idempotency_key)
        if existing is None:
            raise
        return _same_adjustment(existing, user=user, amount=amount, key=idempotency_key)


def _same_adjustment(existing: LedgerEntry, *, user, amount: int, key: str) -> LedgerEntry:
    """A repeated submit is the same adjustment; an old form sent again for another
    user or amount is refused, changing nothing."""
    entry = _same_cause(existing, user_id=user.pk, kinds=(EntryKind.ADJUST,))
    if entry.amount != amount:
        raise IdempotencyConflict(f"Idempotency key {key!r} was already used for another change.")
    return entry


def _adjust_once(user, amount: int, idempotency_key: str, fields: dict, staff_user) -> LedgerEntry:
    with transaction.atomic():
        wallet = _lock_wallet(user.pk)
        now = _now()
        existing = _entry_for(idempotency_key)
        if existing is not None:
            return _same_adjustment(existing, user=user, amount=amount, key=idempotency_key)
        if amount > 0:
            lot = grant(
                user=user,
                amount=amount,
                source=LotSource.ADMIN,
                idempotency_key=idempotency_key,
                **fields,
            )
            return _with_costs(LedgerEntry.objects.get(idempotency_key=lot.grant_key))
        entry = _burn(wallet, -amount, now=now, idempotency_key=idempotency_key, **fields)
        _post_release(
            entry,
            to=AccountCode.REVENUE_BREAKAGE,
            event="credits_removed_by_staff",
            memo="Credits removed by staff",
            staff_user=staff_user,
            reason=fields["reason"],
        )
        return entry


# --- Expiry -----------------------------------------------------------------------

# Expire every due lot of the given (already locked) users in one statement: zero the
# remainders and unreleased costs, write one entry and one lot link per lot with a
# running balance, lower the wallets, and post each lot's released cost from deferred
# revenue to breakage. Data-modifying CTEs all see the same snapshot, so `running`
# reads the wallet balances from before this statement's own update.
_EXPIRE_SQL = """
WITH due AS (
    SELECT id, user_id, remaining, cost_left_cents
    FROM credits_lot
    WHERE user_id = ANY(%(user_ids)s) AND remaining > 0 AND expires_at <= %(now)s
    ORDER BY user_id, id
    FOR UPDATE
),
burned AS (
    UPDATE credits_lot AS lot SET remaining = 0, cost_left_cents = 0
    FROM due
    WHERE lot.id = due.id
      -- Redundant with `due`, but it lets the planner find the batch's lots through an
      -- index instead of merge-joining `due` against the whole primary key.
      AND lot.user_id = ANY(%(user_ids)s) AND lot.remaining > 0 AND lot.expires_at <= %(now)s
    RETURNING lot.id AS lot_id, lot.user_id, due.remaining AS expired,
              due.cost_left_cents AS released
),
running AS (
    -- Ids are drawn here, so the inserts below need no join back on text keys (with
    -- 20,000 lots a batch, the planner's guess of a few rows made that quadratic).
    SELECT b.lot_id, b.user_id, b.expired, b.released, 'expire:lot:' || b.lot_id AS key,
           w.balance - SUM(b.expired) OVER (PARTITION BY b.user_id ORDER BY b.lot_id)
               AS balance_after,
           nextval(pg_get_serial_sequence('credits_ledger_entry', 'id')) AS entry_id,
           CASE WHEN b.released > 0
                THEN nextval(pg_get_serial_sequence('books_journal_transaction', 'id'))
           END AS journal_id
    FROM burned b JOIN credits_wallet w ON w.user_id = b.user_id
    WHERE w.user_id = ANY(%(user_ids)s)  -- the batch's wallets, not a scan of all of them
),
entries AS (
    INSERT INTO credits_ledger_entry
        (id, user_id, kind, amount, balance_after, idempotency_key, cause, cause_ref,
         reason, memo, created_at)
    SELECT entry_id, user_id, 'expire', -expired, balance_after, key, 'task', 'expire_due',
           '', 'Unused credits expired', %(now)s
    FROM running
),
links AS (
    INSERT INTO credits_ledger_entry_lot (entry_id, lot_id, amount, cost_cents)
    SELECT entry_id, lot_id, -expired, -released
    FROM running
),
wallets AS (
    UPDATE credits_wallet AS w SET balance = w.balance - t.total, updated_at = %(now)s
    FROM (SELECT user_id, SUM(expired) AS total FROM burned GROUP BY user_id) t
    WHERE w.user_id = t.user_id
),
journal AS (
    INSERT INTO books_journal_transaction
        (id, idempotency_key, event, cause, cause_ref, reason, memo, ledger_entry_id,
         created_at)
    SELECT journal_id, 'books:' || key, 'credits_expired', 'ledger', key,
           '', 'Paid credits expired', entry_id, %(now)s
    FROM running
    WHERE released > 0
),
journal_lines AS (
    INSERT INTO books_journal_line (transaction_id, account_id, amount_cents)
    SELECT r.journal_id, a.id,
           CASE WHEN a.key = 'deferred_revenue' THEN r.released ELSE -r.released END
    FROM running r
    CROSS JOIN books_account a
    WHERE r.released > 0 AND a.key IN ('deferred_revenue', 'revenue_breakage')
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
