"""The authentication backend: Django's ModelBackend, with a cheaper user per request.

Every signed-in request loads its user by id (django.contrib.auth.get_user). The ORM
spends longer building that query than PostgreSQL spends answering it, so the SQL is
built once per process and run as it is; the row, its is_active and its password hash
(which the session's auth hash is checked against) are read fresh every time.

A page that needs more of the user's own rows on every view can have them read in the
same query (`read_with_user`): one round trip instead of two. Django's checks of the
user (backend, is_active, session auth hash) run unchanged.
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


@contextmanager
def read_with_user(sql: str, params: dict) -> Iterator[Extra]:
    """While in this block, loading the request's user also runs `sql` (one row, named
    parameters, the user's id as %(u)s) in the same query; the row lands in the
    yielded Extra. It stays None when the user was not loaded here (already loaded,
    nobody signed in, a session of another backend): then read it yourself."""
    extra = Extra(sql, params)
    token = _with_user.set(extra)
    try:
        yield extra
    finally:
        _with_user.reset(token)


@cache
def _user_sql() -> tuple[str, str, str, list[str]]:
    """The user table's columns, the table, its primary key (as SQL), and the field
    names in the columns' order."""
    User = get_user_model()
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    table = quote(User._meta.db_table)
    fields = User._meta.concrete_fields
    columns = ", ".join(f"{table}.{quote(field.column)}" for field in fields)
    pk = f"{table}.{quote(User._meta.pk.column)}"
    return columns, table, pk, [field.attname for field in fields]


class AccountBackend(ModelBackend):
    def get_user(self, user_id):
        User = get_user_model()
        try:
            pk = User._meta.pk.to_python(user_id)
        except Exception:  # noqa: BLE001 - a session with a broken id is nobody's
            return None
        columns, table, pk_column, names = _user_sql()
        extra = _with_user.get()
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            if extra is None:
                cursor.execute(
                    f"SELECT {columns} FROM {table} WHERE {pk_column} = %(u)s",  # noqa: S608 - names from the model
                    {"u": pk},
                )
            else:
                cursor.execute(
                    f"SELECT {columns}, extra.* FROM {table} CROSS JOIN ({extra.sql}) AS extra"  # noqa: S608 - names from the model, the caller's constant SQL
                    f" WHERE {pk_column} = %(u)s",
                    {**extra.params, "u": pk},
                )
            row = cursor.fetchone()
        if row is None:
            return None
        if extra is not None:
            row, extra.row = row[: len(names)], row[len(names) :]
        user = User.from_db(DEFAULT_DB_ALIAS, names, row)
        return user if self.user_can_authenticate(user) else None
