"""`make bench`: run the benchmarks in bench/ against PostgreSQL and Redis.

Every `bench/<name>.py` that defines a top-level `main()` is a benchmark; `make bench`
runs them all in name order, `make bench ARGS="ledger webhooks"` only the ones named.
Each runs in its own process with DJANGO_SETTINGS_MODULE=soundstudio.settings.test
against a migrated database of its own (embedded `soundstudio_bench` when
DATABASE_URL is unset) and prints its figures on stdout.

Benchmarks wipe the tables they use, so the database's name must contain "bench"
(for example DATABASE_URL=postgres://postgres@127.0.0.1:5432/ss_bench); a missing
database is created.
"""

from __future__ import annotations

import ast
import contextlib
import os
import subprocess
import sys

from tools.services import ROOT, backing_services, log

BENCH_DIR = ROOT / "bench"

# Runs one benchmark module in a fresh interpreter; its main() may return an exit code.
_RUN_ONE = "import importlib, sys; sys.exit(importlib.import_module('bench.' + sys.argv[1]).main())"


def discover() -> list[str]:
    """Names of the bench/*.py modules that define a top-level main(), without importing them."""
    names = []
    for path in sorted(BENCH_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if any(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main"
            for node in tree.body
        ):
            names.append(path.stem)
    return names


def ensure_bench_database(url: str) -> None:
    """Refuse a database that is not meant for benchmarks; create it when missing."""
    import environ
    import psycopg
    from psycopg import sql

    config = environ.Env.db_url_config(url)
    name = config.get("NAME") or ""
    if "bench" not in name:
        raise SystemExit(
            f"make bench wipes tables: refusing database {name!r}; "
            "point DATABASE_URL at a database whose name contains 'bench'"
        )
    params = {
        "dbname": "postgres",
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
    }
    try:
        conn = psycopg.connect(
            **{key: value for key, value in params.items() if value}, autocommit=True
        )
    except psycopg.Error as error:
        log(f"could not check that database {name!r} exists ({error}); assuming it does")
        return
    with contextlib.closing(conn):
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        log(f"creating database {name!r}")
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def main() -> int:
    available = discover()
    wanted = sys.argv[1:] or available
    unknown = [name for name in wanted if name not in available]
    if unknown:
        log(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    with backing_services(database="soundstudio_bench", persistent_redis=False) as services_env:
        env = {
            **os.environ,
            **services_env,
            "DJANGO_SETTINGS_MODULE": "soundstudio.settings.test",
            "PYTHONUNBUFFERED": "1",
        }
        ensure_bench_database(env["DATABASE_URL"])
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v0"],
            env=env,
            cwd=ROOT,
            check=True,
        )
        failed = []
        for name in wanted:
            log(f"bench {name}")
            result = subprocess.run(
                [sys.executable, "-c", _RUN_ONE, name], env=env, cwd=ROOT, check=False
            )
            if result.returncode != 0:
                log(f"bench {name} failed with exit code {result.returncode}")
                failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
