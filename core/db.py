"""Prepared statements for the few queries every signed-in request makes.

Django binds parameters on the client, so PostgreSQL parses and plans each query
afresh; for the session query (accounts.sessions) planning took three times as long
as running it. `fetchone_prepared` runs a query with server-side binding as a
prepared statement of the connection (psycopg keeps up to 100 per connection), through
Django's cursor wrapper, so it is logged and counted like any other query.

Prepared statements live on a server connection. Behind PgBouncer in transaction mode
that needs PgBouncer 1.21 or newer with `max_prepared_statements` set; otherwise set
DATABASE_PREPARED_STATEMENTS=false and the queries are only bound on the server.
"""

from __future__ import annotations

from types import SimpleNamespace

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

# Django turns psycopg's prepared statements off (prepare_threshold None). A threshold
# no query reaches lets a query ask for one (prepare=True) while nothing else is
# prepared by itself: Django's client-side binding cursors never prepare anyway.
_ONLY_WHEN_ASKED = 2**62


class _Prepared(psycopg.Cursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        if prepare is None:
            prepare = settings.DATABASE_PREPARED_STATEMENTS
        super().execute(query, params, prepare=prepare, binary=binary)
        if (logged := getattr(self, "logged", None)) is not None:
            self._query = logged  # what Django's query log reads (last_executed_query)
        return self


def fetchone_prepared(sql: str, params: dict, *, using: str = DEFAULT_DB_ALIAS) -> tuple | None:
    """One row of `sql` (named %(name)s parameters), as a prepared statement."""
    connection = connections[using]
    connection.ensure_connection()
    connection.validate_thread_sharing()
    if connection.connection.prepare_threshold is None:
        connection.connection.prepare_threshold = _ONLY_WHEN_ASKED
    raw = _Prepared(connection.connection)
    if not connection.queries_logged:
        with connection.make_cursor(raw) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    # Logged (DEBUG, tests counting queries): with its parameters in, as Django logs
    # its own queries; Django reads it from the cursor after executing.
    with connection.make_debug_cursor(raw) as cursor:
        raw.logged = SimpleNamespace(query=connection.ops.compose_sql(sql, params).encode())
        cursor.execute(sql, params)
        return cursor.fetchone()
