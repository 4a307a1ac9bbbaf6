"""Run callables in threads started together, for concurrency tests on PostgreSQL."""

import threading
import time

from django.db import connection

JOIN_TIMEOUT = 30  # seconds; a deadlock or a lost wake-up shows as a thread still alive


def run_threads(targets, timeout=JOIN_TIMEOUT, *, statement_timeout="20s"):
    """Run callables in threads started together; return [(result, exception)] in order.

    Each thread has its own database connection (closed when done) and a statement
    timeout, so a deadlock shows as an error instead of a hung run.
    """
    barrier = threading.Barrier(len(targets))
    outcomes = [None] * len(targets)

    def runner(i, target):
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SET statement_timeout = '{statement_timeout}'")
            barrier.wait()
            outcomes[i] = (target(), None)
        except BaseException as exc:  # reported to the test
            outcomes[i] = (None, exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=runner, args=(i, t), daemon=True) for i, t in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [i for i, thread in enumerate(threads) if thread.is_alive()]
    assert not stuck, f"threads {stuck} did not finish within {timeout}s"
    return outcomes
