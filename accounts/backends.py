"""The authentication backend: Django's ModelBackend, with a cheaper user per request.

Every signed-in request loads its user by id (django.contrib.auth.get_user). The
session engine (accounts.sessions) reads the user's row in the same query as the
session; this backend takes that row instead of asking again. Otherwise it runs SQL
built once per process (the ORM spends longer building that query than PostgreSQL
spends answering it). Either way the row is read fresh on every request, and Django's
checks of it (backend, is_active, session auth hash) run unchanged.

A page that needs more of the user's own rows on every view can have them read in the
same query (`read_with_user`): one round trip for session, user and page.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import DEFAULT_DB_ALIAS, connections


class Extra:
    """What `read_with_user` read beside the user: its row, or None if not read."""

    def __init__(self, sql: str, params: dict):
        self.sql, self.params = sql, params
        self.row: tuple | None = None


_with_user: ContextVar[Extra | None] = ContextVar("read_with_user", default=None)
# The request's session while django.contrib.auth.get_user runs (accounts.middleware).
_session: ContextVar[object | None] = ContextVar("request_session", default=None)


@contextmanager
def read_with_user(sql: str, params: dict) -> Iterator[Extra]:
    """While in this block, loading the request's session or user also runs `sql` in
    the same query; the row lands in the yielded Extra. `sql` is a subquery of one row
    that may refer to the user's row as `me` (its id: me.id) and takes named
    parameters. The row stays None when nothing was loaded here (already loaded,
    nobody signed in): then read it yourself."""
    extra = Extra(sql, params)
    token = _with_user.set(extra)
    try:
        yield extra
    finally:
        _with_user.reset(token)


def pending_extra() -> Extra | None:
    """The read_with_user block's Extra, if it has not been read yet."""
    extra = _with_user.get()
    return extra if extra is not None and extra.row is None else None


@contextmanager
def request_session(session) -> Iterator[None]:
    """Let AccountBackend take the user row the request's session was read with."""
    token = _session.set(session)
    try:
        yield
    finally:
        _session.reset(token)


@cache
def user_sql() -> tuple[str, str, str, list[str]]:
    """The user table's columns as `me.<column>`, the table, its primary key (as SQL),
    and the field names in the columns' order."""
    User = get_user_model()
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    table = quote(User._meta.db_table)
    fields = User._meta.concrete_fields
    columns = ", ".join(f"me.{quote(field.column)}" for field in fields)
    pk = f"me.{quote(User._meta.pk.column)}"
    return columns, table, pk, [field.attname for field in fields]


class AccountBackend(ModelBackend):
    def get_user(self, user_id):
        User = get_user_model()
        try:
            pk = User._meta.pk.to_python(user_id)
        except Exception:  # noqa: BLE001 - a session with a broken id is nobody's
            return None
        names = user_sql()[3]
        session = _session.get()
        row = session.preloaded_user_row(pk) if hasattr(session, "preloaded_user_row") else None
        if row is None:
            row = self._read(pk)
        if row is None:
            return None
        user = User.from_db(DEFAULT_DB_ALIAS, names, row)
        return user if self.user_can_authenticate(user) else None

    def _read(self, pk) -> tuple | None:
        columns, table, pk_column, names = user_sql()
        extra = pending_extra()
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            if extra is None:
                cursor.execute(
                    f"SELECT {columns} FROM {table} me WHERE {pk_column} = %(_user_id)s",  # noqa: S608 - names from the model
                    {"_user_id": pk},
                )
            else:
                cursor.execute(
                    f"SELECT {columns}, x.* FROM {table} me"  # noqa: S608 - names from the model, the caller's constant SQL
                    f" LEFT JOIN LATERAL ({extra.sql}) x ON true WHERE {pk_column} = %(_user_id)s",
                    {**extra.params, "_user_id": pk},
                )
            row = cursor.fetchone()
        if row is not None and extra is not None:
            row, extra.row = row[: len(names)], row[len(names) :]
        return row
