"""Fan purchase benchmark: credit purchases per second through `purchases.services.buy`
beside bare `credits.services.spend` calls of the same amounts, in the same run.

A credit purchase is a spend plus a purchase row and one posting (and its receipt
queued after commit); the goal from the issue is a ratio of at least 0.5.

Both sides spend from fans' paid lots (each with a cost basis, its money in the
books), so every spend releases cost: the bare spend posts it to revenue_usage, the
purchase to the artist and our fee. Every purchase is of a (fan, track) pair not
bought before, and the spend side takes the same fan and amount in the same order.
Clients are processes (the ORM's overhead is CPU-bound Python: threads would mostly
measure the GIL), one pool for both sides; the sides alternate (ABBA) within each
scenario, so drift on a noisy machine falls on both. Each client has its own fans,
as many fans buying at once would.

Tunables (environment):
  PURCHASES_BENCH_SECONDS   length of one timed run (default 3)
  PURCHASES_BENCH_ROUNDS    timed runs per side and scenario (default 4)
  PURCHASES_BENCH_CLIENTS   client processes in the concurrent scenario (default: CPUs)
  PURCHASES_BENCH_FANS      fans (default 100)
  PURCHASES_BENCH_TRACKS    published tracks of the one artist (default 600)

The bench owns its database: it truncates users (CASCADE, the books included) before
and after.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import time
import traceback

LOT_CREDITS = 1_000_000
LOT_COST_CENTS = 50_000_000  # 50 cents a credit


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
    """Empty users and everything hanging off them, the books included (which refuse
    TRUNCATE unless the session allows it), then put the fixed accounts back."""
    from django.db import connection

    from books.services import ensure_fixed_accounts

    with connection.cursor() as cursor:
        cursor.execute("SET books.allow_truncate = on")
        cursor.execute(
            "TRUNCATE accounts_user, books_account, books_journal_transaction,"
            " books_journal_line RESTART IDENTITY CASCADE"
        )
        cursor.execute("RESET books.allow_truncate")
    ensure_fixed_accounts()


def _setup(fans: int, tracks: int) -> tuple[list[int], list[int]]:
    """`fans` fans with one paid lot each (and its money in), one artist's tracks."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from books import services as books
    from books.models import AccountCode, JournalCause
    from credits import services as credit_services
    from credits.models import LotSource
    from tracks.models import Track

    _wipe()
    password = make_password(None)  # unusable
    User.objects.bulk_create(
        User(
            email=f"purchase-bench-{i}@bench.invalid",
            display_name=f"Fan {i}",
            slug=f"purchase-bench-{i}",
            password=password,
        )
        for i in range(fans + 1)
    )
    users = list(User.objects.order_by("pk"))
    artist, fan_users = users[0], users[1:]
    books.artist_account(artist)  # as after the artist's first sale
    for fan in fan_users:
        with transaction.atomic():
            lot = credit_services.grant(
                user=fan,
                amount=LOT_CREDITS,
                source=LotSource.ADMIN,
                idempotency_key=f"bench:grant:{fan.pk}",
                cost_cents=LOT_COST_CENTS,
            )
            books.post(
                key=f"books:bench:grant:{fan.pk}",
                event="package_paid",
                lines=[
                    (AccountCode.CASH, LOT_COST_CENTS),
                    (AccountCode.DEFERRED_REVENUE, -LOT_COST_CENTS),
                ],
                cause=JournalCause.SYSTEM,
                memo=f"Bench lot {lot.pk}",
            )
    now = timezone.now()
    Track.objects.bulk_create(
        Track(
            creator=artist,
            title=f"Bench track {i}",
            prompt="bench",
            genre="pop",
            mood="happy",
            duration_seconds=60,
            length_seconds=60.0,
            seed=i,
            status="ready",
            is_published=True,
            published_at=now,
            charge_kind="credits",
            price_credits=1 + i % 3,
        )
        for i in range(tracks)
    )
    track_ids = list(Track.objects.order_by("pk").values_list("pk", flat=True))
    return [fan.pk for fan in fan_users], track_ids


def _plan(fan_ids: list[int], track_ids: list[int], clients: int) -> list[list[tuple[int, int]]]:
    """Per client: its (fan, track) pairs in order, each pair once, fans round-robin."""
    plans: list[list[tuple[int, int]]] = [[] for _ in range(clients)]
    for i in range(clients):
        mine = fan_ids[i::clients]
        plans[i] = [(fan, track) for track in track_ids for fan in mine]
    return plans


def _worker(index: int, commands, results, go, stop) -> None:
    """A client process: timed runs on command until told to stop (None)."""
    try:
        _setup_django()
        from accounts.models import User
        from credits import services as credit_services
        from purchases import services as purchase_services
        from tracks.models import Track

        users: dict[int, User] = {}
        tracks: dict[int, Track] = {}
        cursors: dict[tuple[str, str], int] = {}  # (mode, scenario) -> next pair
        serial = 0
    except BaseException:
        results.put(("error", index, traceback.format_exc()))
        return
    while (command := commands.get()) is not None:
        mode, scenario, pairs = command
        try:
            if pairs[0][1] not in tracks:
                ids = {fan for fan, _ in pairs}
                users.update((u.pk, u) for u in User.objects.filter(pk__in=ids))
                # Loaded as the API view loads them (purchases.selectors.track_to_buy).
                tracks.update(
                    (t.pk, t)
                    for t in Track.objects.select_related(
                        "creator", "creator__payable_account"
                    ).filter(pk__in={track for _, track in pairs})
                )
            results.put(("ready", index, None))
            go.wait()
            done = 0
            while not stop.is_set():
                position = cursors.get((mode, scenario), 0)
                if position >= len(pairs):
                    raise RuntimeError("bench ran out of (fan, track) pairs; raise TRACKS")
                fan_id, track_id = pairs[position]
                cursors[(mode, scenario)] = position + 1
                fan, track = users[fan_id], tracks[track_id]
                if mode == "service":
                    result = purchase_services.buy(fan=fan, track=track)
                    if result.intent is not None:
                        raise RuntimeError("a bench purchase went to the card path")
                else:
                    serial += 1
                    credit_services.spend(
                        user=fan,
                        amount=track.price_credits,
                        reason="bench",
                        idempotency_key=f"bench:spend:{index}:{serial}",
                    )
                done += 1
            results.put(("done", index, done))
        except BaseException:
            results.put(("error", index, traceback.format_exc()))
            return


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
                target=_worker,
                args=(i, self.commands[i], self.results, self.go, self.stop),
                daemon=True,
            )
            for i in range(size)
        ]
        for process in self.processes:
            process.start()

    def _collect(self, kind: str, count: int) -> list:
        values = []
        while len(values) < count:
            try:
                what, index, value = self.results.get(timeout=300)
            except queue.Empty:
                raise RuntimeError(f"clients did not report {kind!r} in time") from None
            if what == "error":
                raise RuntimeError(f"client {index} failed:\n{value}")
            values.append(value)
        return values

    def run(self, mode: str, scenario: str, plans, clients: int, seconds: float):
        """(calls per second, calls) of `clients` clients, each through its own plan."""
        for i in range(clients):
            self.commands[i].put((mode, scenario, plans[i]))
        self._collect("ready", clients)
        started = time.perf_counter()
        self.go.set()
        time.sleep(seconds)
        self.stop.set()
        elapsed = time.perf_counter() - started
        total = sum(self._collect("done", clients))
        self.go.clear()
        self.stop.clear()
        return total / elapsed, total

    def close(self) -> None:
        for commands in self.commands:
            commands.put(None)
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.terminate()


def _audit(expected_purchases: int) -> bool:
    """After all the concurrent purchases: the books, the ledger and the rows agree."""
    from books.selectors import book_violations
    from credits.selectors import ledger_discrepancies
    from purchases.models import Purchase

    problems = [f"books: {v.subject}: {v.problem}" for v in book_violations()]
    problems += [f"ledger: user {d.user_id}: {d.problem}" for d in ledger_discrepancies()]
    purchases = Purchase.objects.filter(status="completed", payment_method="credits").count()
    if purchases != expected_purchases or Purchase.objects.exclude(status="completed").exists():
        problems.append(f"{purchases} completed purchases, expected {expected_purchases}")
    for problem in problems[:10]:
        _out(f"purchases: audit: {problem}")
    if problems:
        _out(f"purchases: audit FAILED ({len(problems)} problem(s))")
        return False
    _out(
        f"purchases: audit OK after {purchases:,} purchases: every posting balances,"
        " deferred revenue = the lots' unreleased cost, ledger, lots and wallets agree"
    )
    return True


def main() -> int:
    _setup_django()
    from django.conf import settings

    seconds = _env_float("PURCHASES_BENCH_SECONDS", 3.0)
    rounds = _env_int("PURCHASES_BENCH_ROUNDS", 4)
    many = _env_int("PURCHASES_BENCH_CLIENTS", os.cpu_count() or 2)
    fans = _env_int("PURCHASES_BENCH_FANS", 100)
    tracks = _env_int("PURCHASES_BENCH_TRACKS", 600)
    started = time.perf_counter()
    fan_ids, track_ids = _setup(fans, tracks)
    _out(
        f"purchases: {fans} fans with a paid lot each, {tracks} tracks of 1-3 credits, in"
        f" {time.perf_counter() - started:.1f} s; {rounds} x {seconds:g} s per side and"
        f" scenario, alternating; client processes; {os.cpu_count()} CPUs;"
        f" PLATFORM_FEE_PERCENT={settings.PLATFORM_FEE_PERCENT}"
    )
    pool = ClientPool(many)
    ok = True
    purchases = 0
    scenarios = sorted({1, many})
    try:
        for n, clients in enumerate(scenarios):
            # Each scenario buys its own tracks: no pair is ever bought twice.
            plans = _plan(fan_ids, track_ids[n :: len(scenarios)], clients)
            tag = f"clients{clients}"
            figures: dict[str, list[float]] = {"service": [], "spend": []}
            for r in range(rounds + 1):  # round 0 warms up: connections, caches, plans
                for mode in ("service", "spend") if r % 2 == 0 else ("spend", "service"):
                    rate, calls = pool.run(mode, tag, plans, clients, seconds if r else 1.0)
                    purchases += calls if mode == "service" else 0
                    if r:
                        figures[mode].append(rate)
            service = sum(figures["service"]) / rounds
            spend = sum(figures["spend"]) / rounds
            ratio = service / spend
            _out(
                f"purchases  clients={clients:<2} fans={fans}"
                f"  purchase {service:6.0f}/s  bare spend {spend:6.0f}/s  ratio {ratio:.2f}"
                f" (goal >= 0.5{'' if ratio >= 0.5 else ': BELOW GOAL'})"
                f"   (runs: purchase {min(figures['service']):.0f}-"
                f"{max(figures['service']):.0f}, spend {min(figures['spend']):.0f}-"
                f"{max(figures['spend']):.0f})"
            )
    finally:
        pool.close()
    # A missed speed goal is printed, not failed: on a shared machine it is a reading.
    # The books and the ledger not adding up after the run is a failure.
    ok = _audit(purchases) and ok
    from soundstudio.celery import app

    app.control.purge()  # the receipts queued by the bench's purchases
    _wipe()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
