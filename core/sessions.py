"""The session engine: Django's cached_db, able to read a session beside other keys.

Sessions are read from the cache (SESSION_CACHE_ALIAS, Redis) and written through to
PostgreSQL, so a Redis flush logs nobody out. A page that reads cached entries of its
own on every request reads them in the same round trip as the session (`load_with`).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.core.cache import caches


class SessionStore(CachedDBStore):
    def load_with(self, keys: list[str], *, alias: str = "default") -> dict:
        """`caches[alias].get_many(keys)`, loading this session in the same round trip
        when it lives in that cache and is not loaded yet."""
        cache = caches[alias]
        if (
            alias != settings.SESSION_CACHE_ALIAS
            or self.session_key is None
            or hasattr(self, "_session_cache")
        ):
            return cache.get_many(keys)
        own = self.cache_key
        found = cache.get_many([own, *keys])
        data = found.pop(own, None)
        # Not cached (evicted, Redis flushed): from PostgreSQL, as cached_db does.
        self._session_cache = data if data is not None else self.load()
        return found
