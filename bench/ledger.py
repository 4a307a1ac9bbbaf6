"""Credit ledger benchmark: spend throughput, the cost of the books, and expiry of a
million lots.

1. Spends per second through `credits.services.spend` beside the same work done as
   raw SQL through psycopg, with no Django in between: the floor our design allows.
   The lots are paid lots (they carry a cost), so every spend also releases cost basis
   and posts it to the books (a journal transaction and its two lines). Four
   scenarios, one wallet or many x one client or many. Clients are processes (the
   ORM's overhead is CPU-bound Python: threads would mostly measure the GIL), the same
   pool for all sides; the sides alternate (ABBA) within each scenario so drift on a
   noisy machine falls on all of them, and lots and wallets are vacuumed before every
   run so that none inherits another's dead rows.
   The same two sides from free lots (cost 0: nothing to post), run in the same
   alternation, give the cost of the books per spend: through the service, and the
   floor, through raw SQL.
2. `credits.services.expire_due()` over a million due paid lots loaded with SQL (users,
   wallets, lots, the grant entries with their lot links and the package_paid
   postings, so the ledger and the books add up), then a check that every lot was
   written off exactly once, its cost posted to breakage once, and that
   `books.selectors.book_violations()` finds nothing.

Tunables (environment):
  LEDGER_BENCH_ONLY      "spend" or "expire": run one part only (default both)
  LEDGER_BENCH_SECONDS   length of one timed run (default 3)
  LEDGER_BENCH_ROUNDS    timed runs per side and scenario (default 4)
  LEDGER_BENCH_WALLETS   wallets in the many-wallets scenarios (default 200)
  LEDGER_BENCH_CLIENTS   client processes in the concurrent scenarios (default 8)
  LEDGER_BENCH_LOTS      due lots for expire_due (default 1,000,000)
  LEDGER_BENCH_LOTS_PER_USER   how they are spread over users (default 10)

The bench owns its database: it truncates the ledger and journal tables and
accounts_user (CASCADE, which empties books_account too: the fixed accounts are
seeded again) before and after each part.
"""

from __future__ import annotations

import datetime as dt
import math
import multiprocessing as mp
import os
import queue
import random
import sys
import time
import traceback

SPEND_ORDER_SQL = "expires_at ASC NULLS LAST, created_at ASC, id ASC"  # services.SPEND_ORDER
# Spend scenarios: (wallets, clients); `None` means the configured number.
SCENARIOS = [(1, 1), (None, 1), (1, None), (None, None)]
LOT_EXPIRIES_DAYS = (30, 90, None)  # three lots per user, burned in this order
LOT_AMOUNT = 50_000_000
# What a paid spend-bench lot cost: 2.5 cents a credit, so burning one credit releases
# floor(cost_left / remaining) = 2 or 3 cents, never 0: every paid spend posts.
LOT_COST_CENTS = LOT_AMOUNT * 5 // 2
# The expiry bench's lots cost this many cents a credit.
EXPIRE_CENTS_PER_CREDIT = 5

# Journal tables first: they refuse TRUNCATE unless the session allows it (_wipe).
TABLES = (
    "books_journal_line, books_journal_transaction,"
    " credits_ledger_entry_lot, credits_ledger_entry, credits_lot, credits_wallet"
)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "").replace("_", "").replace(",", "") or default)


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, "") or default)


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soundstudio.settings.test")
    import django

    django.setup()


def _out(line: str = "") -> None:
    print(line, flush=True)


def _wipe() -> None:
    """Empty the ledger, the books and the users, then seed the fixed accounts again.

    The ledger's append-only triggers allow TRUNCATE; the journal's refuse it unless
    the session sets books.allow_truncate (here only for this transaction). CASCADE
    reaches books_account through its artist column, hence the re-seeding.
    """
    from django.db import connection, transaction

    from books.services import ensure_fixed_accounts

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL books.allow_truncate = on")
        cursor.execute(f"TRUNCATE {TABLES}, accounts_user RESTART IDENTITY CASCADE")
        ensure_fixed_accounts()


def _vacuum(tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {tables}")


def _check_books(what: str) -> None:
    """`books.selectors.book_violations()` must be empty: print it, stop if not."""
    from books.selectors import book_violations

    started = time.perf_counter()
    violations = book_violations()
    took = time.perf_counter() - started
    if violations:
        for violation in violations[:10]:
            _out(f"{what}: books: {violation.check}: {violation.subject}: {violation.problem}")
        raise SystemExit(f"{what}: books check FAILED: {len(violations):,} violation(s)")
    _out(f"{what}: books check OK ({took:.1f} s): book_violations() = {violations!r}")


# --- Spends -----------------------------------------------------------------------


def raw_connect():
    """A plain psycopg connection to Django's database (autocommit; psycopg defaults)."""
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    params = {
        "dbname": settings["NAME"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
        "host": settings["HOST"],
        "port": settings["PORT"],
    }
    return psycopg.connect(
        **{key: value for key, value in params.items() if value}, autocommit=True
    )


def raw_spend(conn, *, user_id: int, amount: int, reason: str, idempotency_key: str) -> int:
    """`services.spend` statement for statement, minus Django; return the entry id.

    Wallet lock, idempotency-key lookup (the service returns the earlier entry when
    the key was used), the user's open lots locked in spend order, the lot update (the
    remainder and the unreleased cost: floor(cost_left x burned / remaining), the last
    credit takes the rest), the entry, its lot links with the released cost, the
    wallet update and, when the burn released any cost, the journal transaction and
    its two lines (books.services' own statement), in one transaction: the same SQL
    the service sends, through psycopg's defaults (server-side binding, statements
    prepared after 5 uses) where Django binds parameters client-side. Not copied:
    the savepoint round trips the service's nested transaction.atomic() adds.
    """
    from books.services import _POST_SQL

    now = dt.datetime.now(dt.UTC)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT balance FROM credits_wallet WHERE user_id = %s FOR UPDATE", [user_id])
        balance = cur.fetchone()[0]
        cur.execute(
            "SELECT id FROM credits_ledger_entry WHERE idempotency_key = %s", [idempotency_key]
        )
        existing = cur.fetchone()
        if existing is not None:
            return existing[0]
        cur.execute(
            "SELECT id, remaining, cost_left_cents, expires_at FROM credits_lot"
            " WHERE user_id = %s AND remaining > 0"
            f" ORDER BY {SPEND_ORDER_SQL} FOR UPDATE",
            [user_id],
        )
        lots = cur.fetchall()
        if any(expires is not None and expires <= now for *_, expires in lots):
            raise RuntimeError("bench lots never expire during the spend runs")
        if sum(remaining for _, remaining, _, _ in lots) < amount:
            raise RuntimeError("bench wallet ran dry; raise LOT_AMOUNT")
        touched = []  # (lot id, remaining after, cost left after, -credits, -released)
        left = amount
        for lot_id, remaining, cost_left, _ in lots:
            take = min(remaining, left)
            released = cost_left if take == remaining else cost_left * take // remaining
            touched.append((lot_id, remaining - take, cost_left - released, -take, -released))
            left -= take
            if left == 0:
                break
        if len(touched) == 1:
            lot_id, remaining, cost_left, _, _ = touched[0]
            cur.execute(
                "UPDATE credits_lot SET remaining = %s, cost_left_cents = %s WHERE id = %s",
                [remaining, cost_left, lot_id],
            )
        else:
            cur.execute(
                "UPDATE credits_lot AS lot"
                " SET remaining = v.remaining, cost_left_cents = v.cost_left"
                " FROM unnest(%s::bigint[], %s::integer[], %s::integer[])"
                "   AS v (id, remaining, cost_left)"
                " WHERE lot.id = v.id",
                [[t[0] for t in touched], [t[1] for t in touched], [t[2] for t in touched]],
            )
        balance -= amount
        cur.execute(
            "INSERT INTO credits_ledger_entry (user_id, kind, amount, balance_after,"
            " idempotency_key, cause, cause_ref, staff_user_id, reason, memo, reverses_id,"
            " created_at) VALUES (%s, 'spend', %s, %s, %s, 'user', '', NULL, %s, '', NULL, %s)"
            " RETURNING id",
            [user_id, -amount, balance, idempotency_key, reason, now],
        )
        entry_id = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO credits_ledger_entry_lot (entry_id, lot_id, amount, cost_cents)"
            " SELECT %s, lot_id, amount, cost"
            " FROM unnest(%s::bigint[], %s::integer[], %s::integer[])"
            " WITH ORDINALITY AS link (lot_id, amount, cost, n) ORDER BY n",
            [entry_id, [t[0] for t in touched], [t[3] for t in touched], [t[4] for t in touched]],
        )
        cur.execute(
            "UPDATE credits_wallet SET balance = %s, updated_at = %s WHERE user_id = %s",
            [balance, now, user_id],
        )
        released = -sum(t[4] for t in touched)
        if released > 0:  # services._post_release: deferred revenue -> revenue_usage
            cur.execute(
                _POST_SQL,
                [
                    f"books:{idempotency_key}",
                    "credits_used",
                    "ledger",
                    idempotency_key,
                    None,
                    "",
                    reason,  # memo or reason
                    None,
                    entry_id,
                    now,
                    ["deferred_revenue", "revenue_usage"],
                    [released, -released],
                ],
            )
            if len(cur.fetchall()) != 2:
                raise RuntimeError(f"posting books:{idempotency_key} wrote no lines")
    return entry_id


def _spend_worker(index: int, commands, results, go, stop) -> None:
    """A client process: runs timed spend runs on command until told to stop (None)."""
    try:
        _setup_django()
        from accounts.models import User
        from credits import services

        conn = raw_connect()
        users: dict[int, User] = {}
        rng = random.Random(index)
        serial = 0
    except BaseException:
        results.put(("error", index, traceback.format_exc()))
        return
    while (command := commands.get()) is not None:
        mode, user_ids, tag = command
        try:
            missing = [uid for uid in user_ids if uid not in users]
            users.update((user.pk, user) for user in User.objects.filter(pk__in=missing))
            chosen = [users[uid] for uid in user_ids]
            results.put(("ready", index, None))
            go.wait()
            done = 0
            while not stop.is_set():
                user = rng.choice(chosen)
                serial += 1
                key = f"bench:{tag}:{index}:{serial}"
                if mode == "service":
                    services.spend(user=user, amount=1, reason="bench", idempotency_key=key)
                else:
                    raw_spend(conn, user_id=user.pk, amount=1, reason="bench", idempotency_key=key)
                done += 1
            results.put(("done", index, done))
        except BaseException:
            results.put(("error", index, traceback.format_exc()))
            return
    conn.close()


class ClientPool:
    """Client processes (spawned, each with its own django.setup()) shared by all runs."""

    def __init__(self, size: int) -> None:
        ctx = mp.get_context("spawn")
        self.go = ctx.Event()
        self.stop = ctx.Event()
        self.results = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(size)]
        self.processes = [
            ctx.Process(
                target=_spend_worker,
                args=(i, self.commands[i], self.results, self.go, self.stop),
                daemon=True,
            )
            for i in range(size)
        ]
        for process in self.processes:
            process.start()
        self.runs = 0

    def _collect(self, kind: str, count: int) -> list:
        values = []
        while len(values) < count:
            try:
                what, index, value = self.results.get(timeout=120)
            except queue.Empty:
                raise RuntimeError(f"spend clients did not report {kind!r} in time") from None
            if what == "error":
                raise RuntimeError(f"spend client {index} failed:\n{value}")
            if what != kind:
                raise RuntimeError(f"spend client {index} said {what!r}, expected {kind!r}")
            values.append(value)
        return values

    def run(self, mode: str, user_ids: list[int], clients: int, seconds: float) -> float:
        """Spends per second of `clients` clients spending 1 credit from `user_ids` at random."""
        self.runs += 1
        for i in range(clients):
            self.commands[i].put((mode, user_ids, f"{mode}{self.runs}"))
        self._collect("ready", clients)
        started = time.perf_counter()
        self.go.set()
        time.sleep(seconds)
        self.stop.set()
        elapsed = time.perf_counter() - started
        total = sum(self._collect("done", clients))
        self.go.clear()
        self.stop.clear()
        return total / elapsed

    def close(self) -> None:
        for commands in self.commands:
            commands.put(None)
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.terminate()


def _spend_setup(wallets: int) -> tuple[list[int], list[int]]:
    """`wallets` users with three big paid lots each, and `wallets` with three free ones.

    Granted through the service; each paid lot with its package_paid posting (cash
    against deferred revenue) in the same transaction, as a card payment does.
    """
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from accounts.models import User
    from books import services as books
    from books.models import AccountCode, JournalCause
    from credits import services
    from credits.models import LotSource

    _wipe()
    User.objects.bulk_create(
        User(
            email=f"spend-bench-{i}@bench.invalid",
            display_name=f"Spend bench {i}",
            slug=f"spend-bench-{i}",
            password=make_password(None),  # unusable
        )
        for i in range(2 * wallets)
    )
    users = list(User.objects.order_by("pk"))
    paid, free = users[:wallets], users[wallets:]
    now = dt.datetime.now(dt.UTC)
    for i, user in enumerate(users):
        cost = LOT_COST_CENTS if i < wallets else 0
        for n, days in enumerate(LOT_EXPIRIES_DAYS):
            key = f"bench:grant:{user.pk}:{n}"
            with transaction.atomic():
                services.grant(
                    user=user,
                    amount=LOT_AMOUNT,
                    source=LotSource.PACKAGE if cost else LotSource.ADMIN,
                    idempotency_key=key,
                    expires_at=None if days is None else now + dt.timedelta(days=days),
                    cost_cents=cost,
                )
                if cost:
                    books.post(
                        key=f"books:paid:{key}",
                        event="package_paid",
                        lines=[(AccountCode.CASH, cost), (AccountCode.DEFERRED_REVENUE, -cost)],
                        cause=JournalCause.SYSTEM,
                        cause_ref="spend-bench",
                        memo="Bench package",
                    )
    return [user.pk for user in paid], [user.pk for user in free]


def _us(rate: float) -> float:
    return 1e6 / rate


def _books_cost(paid: float, free: float, clients: int) -> str:
    """Paid against free spends per second: their ratio, and the books' extra time per
    spend (of the clients together; with several, also each client's wait)."""
    extra = _us(paid) - _us(free)
    each = f", {extra * clients:+.0f} us per client" if clients > 1 else ""
    return (
        f"paid {paid:6.0f}/s  free {free:6.0f}/s  ratio {paid / free:.2f}"
        f"  books {extra:+5.0f} us per spend{each}"
    )


def bench_spend() -> None:
    seconds = _env_float("LEDGER_BENCH_SECONDS", 3.0)
    rounds = _env_int("LEDGER_BENCH_ROUNDS", 4)
    many_wallets = _env_int("LEDGER_BENCH_WALLETS", 200)
    many_clients = _env_int("LEDGER_BENCH_CLIENTS", 8)
    paid_ids, free_ids = _spend_setup(many_wallets)
    _check_books("ledger spend: setup")
    _out(
        f"ledger spend: {len(LOT_EXPIRIES_DAYS)} lots per wallet, 1 credit per spend;"
        f" {rounds} x {seconds:g} s per side and scenario, alternating; client processes;"
        f" {os.cpu_count()} CPUs"
    )
    _out(
        "ledger spend: sides: service = services.spend from paid lots (each spend releases"
        " 2-3 cents and posts them), raw = the same writes as raw SQL (lots, entry, links,"
        " wallet, journal transaction and lines); and for the cost of the books, the same"
        " two from free lots (cost 0: nothing posted); lots and wallets vacuumed before"
        " every run"
    )
    # side -> (what the clients run, from which wallets). Paid and free wallets each get
    # spends from both the service and raw SQL, so their rows churn alike.
    sides = {
        "service": ("service", paid_ids),
        "raw": ("raw", paid_ids),
        "service free": ("service", free_ids),
        "raw free": ("raw", free_ids),
    }
    order = list(sides)
    pool = ClientPool(many_clients)
    try:
        for wallets, clients in SCENARIOS:
            wallets = wallets or many_wallets
            clients = clients or many_clients
            for mode, ids in sides.values():  # warm-up: connections, caches, prepared plans
                pool.run(mode, ids[:wallets], clients, min(1.0, seconds))
            figures: dict[str, list[float]] = {side: [] for side in sides}
            for r in range(rounds):
                for side in order if r % 2 == 0 else reversed(order):
                    mode, ids = sides[side]
                    # Every run starts without the dead lot and wallet rows of the last.
                    _vacuum("credits_lot, credits_wallet")
                    figures[side].append(pool.run(mode, ids[:wallets], clients, seconds))
            service, raw, service_free, raw_free = (sum(figures[side]) / rounds for side in order)

            def runs(side: str, figures=figures) -> str:
                return f"{min(figures[side]):.0f}-{max(figures[side]):.0f}"

            scenario = f"wallets={wallets:<4} clients={clients:<2}"
            _out(
                f"ledger spend  {scenario} service {service:6.0f}/s  raw {raw:6.0f}/s"
                f"  ratio {service / raw:.2f}   (runs: service {runs('service')},"
                f" raw {runs('raw')})"
            )
            _out(
                f"books cost    {scenario} service {_books_cost(service, service_free, clients)}"
                f"   (runs: free {runs('service free')})"
            )
            _out(
                f"books cost    {scenario} raw     {_books_cost(raw, raw_free, clients)}"
                f"   (runs: free {runs('raw free')})"
            )
    finally:
        pool.close()
    _audit_spends()
    _wipe()


_POSTED_SQL = """
SELECT count(*) FILTER (WHERE lot.cost_cents > 0),
       count(t.id) FILTER (WHERE lot.cost_cents > 0
                             AND t.idempotency_key = 'books:' || e.idempotency_key
                             AND t.event = 'credits_used' AND x.cost_cents < 0),
       count(*) FILTER (WHERE lot.cost_cents = 0),
       count(t.id) FILTER (WHERE lot.cost_cents = 0)
FROM credits_ledger_entry e
JOIN credits_ledger_entry_lot x ON x.entry_id = e.id
JOIN credits_lot lot ON lot.id = x.lot_id
LEFT JOIN books_journal_transaction t ON t.ledger_entry_id = e.id
WHERE e.kind = 'spend'
"""


def _audit_spends() -> None:
    """After all the concurrent spends: entries, lots and wallets must still agree, every
    paid spend must have posted once (a free one never) and the books must check out."""
    from django.db import connection

    from books.selectors import account_balances
    from credits.models import LedgerEntry
    from credits.selectors import ledger_discrepancies

    problems = ledger_discrepancies()
    entries = LedgerEntry.objects.filter(kind="spend").count()
    if problems:
        for problem in problems[:10]:
            _out(f"ledger spend: audit: user {problem.user_id}: {problem.problem}")
        raise SystemExit(f"ledger spend: audit FAILED for {len(problems)} user(s)")
    _out(f"ledger spend: audit OK after {entries:,} spends (ledger, lots and wallets agree)")
    with connection.cursor() as cursor:
        cursor.execute(_POSTED_SQL)
        paid, paid_posted, free, free_posted = cursor.fetchone()
    if paid_posted != paid or free_posted:
        raise SystemExit(
            f"ledger spend: postings FAILED: {paid_posted:,} of {paid:,} paid spends posted"
            f" (credits_used, keyed by their entry), {free_posted:,} of {free:,} free ones"
        )
    balances = account_balances()
    _out(
        f"ledger spend: postings OK: {paid:,} paid spends each posted once, {free:,} free"
        f" spends none; deferred_revenue {balances['deferred_revenue']:,} cents,"
        f" revenue_usage {balances['revenue_usage']:,}, cash {balances['cash']:,}"
    )
    _check_books("ledger spend")


# --- Expiry -----------------------------------------------------------------------

# Lots are inserted round-robin (every user's first lot, then every user's second...)
# as if bought over time, so one user's lots sit in different parts of the table.
_LOAD_SQL = [
    """
    INSERT INTO accounts_user
        (password, is_superuser, email, display_name, slug, is_staff, is_active, date_joined)
    SELECT '!', false, 'expire-bench-' || g || '@bench.invalid', 'Expire bench ' || g,
           'expire-bench-' || g, false, true, %(now)s - interval '90 days'
    FROM generate_series(0, %(users)s - 1) AS g
    """,
    """
    CREATE TEMP TABLE bench_user ON COMMIT DROP AS
    SELECT id, (row_number() OVER (ORDER BY id) - 1)::bigint AS idx FROM accounts_user
    """,
    """
    INSERT INTO credits_lot
        (user_id, amount, remaining, source, expires_at, cost_cents, cost_left_cents,
         grant_key, created_at)
    SELECT u.id, l.amount, l.amount, 'package',
           %(now)s - make_interval(hours => 1 + mod(g, %(per_user)s)::int),
           l.amount * %(cents_per_credit)s, l.amount * %(cents_per_credit)s,
           'expire-bench:lot:' || g, %(now)s - interval '60 days'
    FROM generate_series(0, %(lots)s - 1) AS g
    CROSS JOIN LATERAL (SELECT 1 + mod(g * 37, 50)::int AS amount) AS l
    JOIN bench_user u ON u.idx = g / %(per_user)s
    ORDER BY mod(g, %(per_user)s), g
    """,
    """
    INSERT INTO credits_ledger_entry
        (user_id, kind, amount, balance_after, idempotency_key, cause, cause_ref,
         reason, memo, created_at)
    SELECT user_id, 'grant', amount,
           SUM(amount) OVER (PARTITION BY user_id ORDER BY id), grant_key, 'system',
           'expire-bench', '', 'Bench grant', created_at
    FROM credits_lot ORDER BY id
    """,
    """
    INSERT INTO credits_ledger_entry_lot (entry_id, lot_id, amount, cost_cents)
    SELECT e.id, l.id, l.amount, l.cost_cents
    FROM credits_lot l JOIN credits_ledger_entry e ON e.idempotency_key = l.grant_key
    ORDER BY e.id
    """,
    # Each lot's package_paid posting (cash against deferred revenue), as a card payment
    # writes it, so deferred revenue starts equal to the lots' unreleased cost.
    """
    INSERT INTO books_journal_transaction
        (idempotency_key, event, cause, cause_ref, reason, memo, created_at)
    SELECT 'books:paid:' || grant_key, 'package_paid', 'stripe', 'expire-bench', '',
           'Bench package', created_at
    FROM credits_lot WHERE cost_cents > 0 ORDER BY id
    """,
    """
    INSERT INTO books_journal_line (transaction_id, account_id, amount_cents)
    SELECT t.id, a.id, CASE WHEN a.key = 'cash' THEN l.cost_cents ELSE -l.cost_cents END
    FROM credits_lot l
    JOIN books_journal_transaction t ON t.idempotency_key = 'books:paid:' || l.grant_key
    CROSS JOIN books_account a
    WHERE l.cost_cents > 0 AND a.key IN ('cash', 'deferred_revenue')
    ORDER BY t.id, a.key
    """,
    """
    INSERT INTO credits_wallet (user_id, balance, updated_at)
    SELECT user_id, SUM(remaining), %(now)s FROM credits_lot GROUP BY user_id
    """,
]

# One expire entry per lot, keyed and linked to it for the lot's whole remainder and its
# whole cost; one credits_expired posting per entry, keyed by it, moving the lot's cost
# to breakage; nothing due left; wallets at zero; every entry's balance_after the
# running sum of its user's entries in id order.
_CHECK_SQL = """
WITH breakage AS (
    SELECT l.transaction_id, -SUM(l.amount_cents) AS cents
    FROM books_journal_line l JOIN books_account a ON a.id = l.account_id
    WHERE a.key = 'revenue_breakage'
    GROUP BY l.transaction_id
),
posted AS (
    SELECT count(*) AS postings,
           count(*) FILTER (WHERE t.idempotency_key = 'books:' || e.idempotency_key
                              AND e.kind = 'expire' AND x.cost_cents = -lot.cost_cents
                              AND b.cents = lot.cost_cents) AS matching,
           count(DISTINCT x.lot_id) AS lots
    FROM books_journal_transaction t
    JOIN credits_ledger_entry e ON e.id = t.ledger_entry_id
    JOIN credits_ledger_entry_lot x ON x.entry_id = e.id
    JOIN credits_lot lot ON lot.id = x.lot_id
    LEFT JOIN breakage b ON b.transaction_id = t.id
    WHERE t.event = 'credits_expired'
),
links AS (
    SELECT count(*) AS links,
           count(*) FILTER (WHERE e.idempotency_key = 'expire:lot:' || x.lot_id
                              AND x.amount = e.amount AND e.amount = -l.amount) AS matching,
           count(DISTINCT x.lot_id) AS lots
    FROM credits_ledger_entry e
    JOIN credits_ledger_entry_lot x ON x.entry_id = e.id
    JOIN credits_lot l ON l.id = x.lot_id
    WHERE e.kind = 'expire'
)
SELECT
    (SELECT count(*) FROM credits_ledger_entry WHERE kind = 'expire'),
    links.links, links.matching, links.lots,
    (SELECT count(*) FROM credits_lot WHERE cost_cents > 0),
    posted.postings, posted.matching, posted.lots,
    (SELECT count(*) FROM credits_lot WHERE remaining > 0 AND expires_at <= %(now)s),
    (SELECT count(*) FROM credits_wallet WHERE balance <> 0),
    (SELECT COALESCE(SUM(amount), 0) FROM credits_ledger_entry),
    (SELECT count(*) FROM (
        SELECT balance_after, SUM(amount) OVER (PARTITION BY user_id ORDER BY id) AS running
        FROM credits_ledger_entry) AS t
     WHERE balance_after <> running)
FROM links, posted
"""


def _expire_load(lots: int, per_user: int, now: dt.datetime) -> None:
    from django.db import connection, transaction

    params = {
        "now": now,
        "lots": lots,
        "per_user": per_user,
        "users": math.ceil(lots / per_user),
        "cents_per_credit": EXPIRE_CENTS_PER_CREDIT,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in _LOAD_SQL:
            cursor.execute(statement, params)
    with connection.cursor() as cursor:
        # Statistics and visibility map as autovacuum would leave them on a live database,
        # and no checkpoint of the load's dirty pages landing inside the timed part.
        cursor.execute(f"VACUUM ANALYZE {TABLES}, accounts_user")
        cursor.execute("CHECKPOINT")


def bench_expire() -> None:
    from django.db import connection

    from credits import services

    lots = _env_int("LEDGER_BENCH_LOTS", 1_000_000)
    per_user = _env_int("LEDGER_BENCH_LOTS_PER_USER", 10)
    users = math.ceil(lots / per_user)
    _wipe()
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    _expire_load(lots, per_user, now)
    _out(
        f"expire_due: loaded {lots:,} due lots of {users:,} users"
        f" costing {EXPIRE_CENTS_PER_CREDIT} cents a credit (+ grant entries, links, wallets,"
        f" package_paid postings) in {time.perf_counter() - started:.1f} s"
    )
    _check_books("expire_due: loaded")

    started = time.perf_counter()
    expired = services.expire_due()
    elapsed = time.perf_counter() - started
    _out(f"expire_due: {expired:,} lots in {elapsed:.1f} s = {expired / elapsed:,.0f} lots/s")

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(_CHECK_SQL, {"now": dt.datetime.now(dt.UTC)})
        (
            entries,
            links,
            matching,
            lots_linked,
            paid_lots,
            postings,
            postings_matching,
            lots_posted,
            still_due,
            wallets_left,
            ledger_sum,
            bad_running,
        ) = cursor.fetchone()
    problems = []
    if expired != lots:
        problems.append(f"expire_due returned {expired:,}, expected {lots:,}")
    if entries != lots:
        problems.append(f"{entries:,} expire entries, expected {lots:,}")
    if not links == matching == lots_linked == lots:
        problems.append(
            f"{links:,} expire links, {matching:,} matching their entry's key and amount"
            f" and their lot's remainder, over {lots_linked:,} lots; expected {lots:,}"
        )
    if paid_lots != lots:
        problems.append(f"{paid_lots:,} lots with a cost, expected {lots:,}")
    if not postings == postings_matching == lots_posted == paid_lots:
        problems.append(
            f"{postings:,} credits_expired postings, {postings_matching:,} keyed by their"
            f" expire entry and moving their lot's whole cost to breakage, over"
            f" {lots_posted:,} lots; expected {paid_lots:,}"
        )
    if still_due:
        problems.append(f"{still_due:,} lots still due")
    if wallets_left:
        problems.append(f"{wallets_left:,} wallets not at zero")
    if ledger_sum:
        problems.append(f"ledger sums to {ledger_sum:,}, not 0")
    if bad_running:
        problems.append(f"{bad_running:,} entries whose balance_after is not the running sum")
    took = time.perf_counter() - started
    if problems:
        _out(f"expire_due: check FAILED ({took:.1f} s): " + "; ".join(problems))
    else:
        _out(
            f"expire_due: check OK ({took:.1f} s): {entries:,} expire entries, one per lot with"
            f" its key and lot link; {postings:,} credits_expired postings, one per lot, its"
            " whole cost to breakage; no lot still due; every wallet at 0; the ledger sums"
            " to 0 and every balance_after is its user's running sum"
        )
    if problems:
        _wipe()
        raise SystemExit(1)
    _check_books("expire_due")
    _wipe()


def main() -> int:
    _setup_django()
    only = os.environ.get("LEDGER_BENCH_ONLY", "")
    if only not in ("", "spend", "expire"):
        _out(f"LEDGER_BENCH_ONLY must be 'spend' or 'expire', not {only!r}")
        return 2
    if only in ("", "spend"):
        bench_spend()
    if only in ("", "expire"):
        bench_expire()
    return 0


if __name__ == "__main__":
    sys.exit(main())
