"""The session engine: Django's database sessions, read in one query with their user.

A session row carries its user's id (accounts.models.Session), so loading a session
reads the user's row in the same query, and whatever a page asked to read with it
(accounts.backends.read_with_user): a signed-in request makes one round trip to
PostgreSQL before its view does anything of its own. The user row is handed to
accounts.backends.AccountBackend, which still runs Django's checks on it (is_active,
the session's auth hash). Sessions live in PostgreSQL only, so a Redis flush logs
nobody out; `accounts.clear_sessions` (daily) deletes expired ones.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import cache

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from accounts import backends
from core.db import fetchone_prepared

# Signed session texts already checked, with their JSON: (text, SECRET_KEY) -> bytes.
_verified: OrderedDict[tuple[str, str], bytes] = OrderedDict()
_VERIFIED_SIZE = 4096
_verified_lock = threading.Lock()


@cache
def _session_sql() -> str:
    from accounts.models import Session

    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    columns, table, _, _ = backends.user_sql()
    return (
        f"SELECT s.session_data, s.user_id, {columns}{{extra_columns}}"  # noqa: S608 - names from the models
        f" FROM {quote(Session._meta.db_table)} s LEFT JOIN {table} me ON me.id = s.user_id"
        "{extra_join}"
        " WHERE s.session_key = %(_session_key)s AND s.expire_date > %(_session_now)s"
    )


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls):
        from accounts.models import Session

        return Session

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        try:
            instance.user_id = int(data.get(SESSION_KEY))
        except (TypeError, ValueError):
            instance.user_id = None
        return instance

    def load(self):
        self._user_row = None
        key = self.session_key  # None when the cookie's key was malformed
        if key is None:
            return {}
        extra = backends.pending_extra()
        sql = _session_sql()
        params = {"_session_key": key, "_session_now": timezone.now()}
        if extra is None:
            sql = sql.format(extra_columns="", extra_join="")
        else:
            sql = sql.format(
                extra_columns=", x.*", extra_join=f" LEFT JOIN LATERAL ({extra.sql}) x ON true"
            )
            params.update(extra.params)
        row = fetchone_prepared(sql, params)
        if row is None:
            self._session_key = None
            return {}
        data, user_id, rest = row[0], row[1], row[2:]
        if user_id is not None:
            width = len(backends.user_sql()[3])
            self._user_row = (user_id, rest[:width])
            if extra is not None:
                extra.row = rest[width:]
        return self.decode(data)

    def preloaded_user_row(self, user_id) -> tuple | None:
        """The user's row as read with this session, if it is that user's."""
        found = getattr(self, "_user_row", None)
        if found is None or found[0] != user_id:
            return None
        return found[1]

    def decode(self, session_data):
        """Django's decode, checking a session's signature once per process: the
        same signed text is the same session, so later reads only parse its JSON."""
        key = (session_data, settings.SECRET_KEY)
        with _verified_lock:
            verified = _verified.get(key)
            if verified is not None:
                _verified.move_to_end(key)
        if verified is not None:
            return self.serializer().loads(verified)
        data = super().decode(session_data)
        if data:  # only what Django accepted (a bad signature decodes as {})
            with _verified_lock:
                _verified[key] = self.serializer().dumps(data)
                while len(_verified) > _VERIFIED_SIZE:
                    _verified.popitem(last=False)
        return data

    @classmethod
    def clear_expired(cls) -> int:
        deleted, _ = cls.get_model_class().objects.filter(expire_date__lt=timezone.now()).delete()
        return deleted
