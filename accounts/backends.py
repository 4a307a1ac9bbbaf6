"""The authentication backend: Django's ModelBackend, with a cheaper user per request.

Every signed-in request loads its user by id (django.contrib.auth.get_user). The ORM
spends longer building that query than PostgreSQL spends answering it, so the SQL is
built once per process and run as it is; the row, its is_active and its password hash
(which the session's auth hash is checked against) are read fresh every time.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import DEFAULT_DB_ALIAS, connections


@cache
def _user_by_id_sql() -> tuple[str, list[str]]:
    """`SELECT <every column> FROM <user table> WHERE id = %s`, and the field names."""
    User = get_user_model()
    compiler = User._default_manager.filter(pk=0).query.get_compiler(DEFAULT_DB_ALIAS)
    sql, params = compiler.as_sql()
    assert list(params) == [0], params  # noqa: S101 - the one parameter is the id
    return sql, [column.target.attname for column, _, _ in compiler.select]


class AccountBackend(ModelBackend):
    def get_user(self, user_id):
        User = get_user_model()
        try:
            pk = User._meta.pk.to_python(user_id)
        except Exception:  # noqa: BLE001 - a session with a broken id is nobody's
            return None
        sql, names = _user_by_id_sql()
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(sql, [pk])
            row = cursor.fetchone()
        if row is None:
            return None
        user = User.from_db(DEFAULT_DB_ALIAS, names, row)
        return user if self.user_can_authenticate(user) else None
