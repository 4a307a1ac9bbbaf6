"""Caches of artist pages, invalidated by a per-artist version number in PostgreSQL.

Every change that can alter what an artist page shows (publish, price, delete,
profile) gives the slug's page a new version (tracks.models.ArtistPage, from a
sequence) in the change's own transaction: a page drawn before the commit sees
neither the change nor its version, one drawn after sees both. A cached entry
remembers the version it was made under and is used only while that version is
current, so a stale page is never served and nothing needs deleting. A page reads
the version in a query it makes anyway (for a signed-in visitor, the one with their
session and user: `VERSION_SQL`).

Three kinds of entry: the page's content (the artist's header and track list, shared
by everyone, with the artist's id), in Redis for every process; and, in each
process's memory, the whole page for anonymous visitors, whose page has nothing
personal in it, and the whole page for signed-in visitors as a shell, every personal
bit a placeholder that the view fills in per request (core.shell, purchases.buttons).
Every entry's key carries the release (core.release), since another release's
templates and static files would draw it differently.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from django.core.cache import cache
from django.db import connection

from core import release

# The version of the page at %(page_slug)s, as a column of a query the page makes anyway.
VERSION_SQL = "(SELECT v.version FROM tracks_artist_page v WHERE v.slug = %(page_slug)s)"

_BUMP_SQL = (
    "INSERT INTO tracks_artist_page (slug, version)"
    " SELECT s, nextval('tracks_artist_page_version_seq')"
    " FROM unnest(%s::text[]) AS s ORDER BY s"
    " ON CONFLICT (slug) DO UPDATE SET version = EXCLUDED.version"
)
_INSERT_SQL = (
    "INSERT INTO tracks_artist_page (slug, version)"
    " VALUES (%(page_slug)s, nextval('tracks_artist_page_version_seq'))"
    " ON CONFLICT (slug) DO NOTHING RETURNING version"
)
_ENSURE_SQL = f"WITH new AS ({_INSERT_SQL}) SELECT version FROM new UNION ALL SELECT {VERSION_SQL}"  # noqa: S608 - constants only


def changed(*slugs: str) -> None:
    """Give the artists' pages a new version, in the current transaction."""
    wanted = sorted({slug for slug in slugs if slug})  # one order: no deadlock
    if wanted:
        with connection.cursor() as cursor:
            cursor.execute(_BUMP_SQL, [wanted])


def current_version(slug: str) -> int:
    """The page's version, made now if it has none yet. Reading never waits for a
    change in progress: it sees the version that change's commit replaces."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {VERSION_SQL}", {"page_slug": slug})  # noqa: S608 - constants only
        (version,) = cursor.fetchone()
        if version is not None:
            return version
        for _ in range(3):  # made meanwhile by another request: read it again
            cursor.execute(_ENSURE_SQL, {"page_slug": slug})
            for (version,) in cursor.fetchall():
                if version is not None:
                    return version
    raise RuntimeError(f"no version for the artist page {slug!r}")


class _Memory:
    """This process's entries, least recently used dropped first."""

    def __init__(self, size: int):
        self.size, self.entries, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: tuple) -> tuple | None:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def put(self, key: tuple, version: int, value) -> None:
        with self.lock:
            self.entries[key] = (version, value)
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


# 2 kinds x a few hundred pages of 15-40 kB: some megabytes per process at most.
_memory = _Memory(512)


def forget() -> None:
    """Drop this process's entries (tests: a rolled-back version can come again)."""
    _memory.clear()


def public_page(slug: str, page: str | None, version: int) -> bytes | None:
    """The whole page as an anonymous visitor sees it, if held and current."""
    found = _memory.get(("public", release.current(), slug, str(page or 1)))
    return found[1] if found is not None and found[0] == version else None


def store_public_page(slug: str, page: str | None, content: bytes, version: int) -> None:
    _memory.put(("public", release.current(), slug, str(page or 1)), version, content)


class ArtistShell(NamedTuple):
    """The whole page as every signed-in visitor sees it, personal bits as placeholders
    (core.shell), with the artist's id for the Buy buttons."""

    artist_id: int
    html: str
    offers: tuple  # purchases.buttons.offers_in(html), read once for every view
    parts: tuple  # core.shell.compile(html), split once for every view
    buttons: tuple  # purchases.buttons.drawn(offers): every button each offer can show


def held_shell(slug: str, page: str | None, variant: str) -> tuple[int, ArtistShell] | None:
    """(version, shell) of the signed-in page as this process holds it, current or not:
    its offers say which tracks' Buy buttons to read before the version is known."""
    return _memory.get(("shell", release.current(), slug, str(page or 1), variant))


def shell(
    slug: str,
    page: str | None,
    variant: str,
    version: int,
    render: Callable[[], ArtistShell | None],
) -> ArtistShell | None:
    """The signed-in page's shell at `version`, held or drawn now; `variant` is what
    the shell depends on besides the page (core.shell.key). Like `content`, a slug
    that is nobody's (`render` returns None) is not kept."""
    key = ("shell", release.current(), slug, str(page or 1), variant)
    found = _memory.get(key)
    if found is not None and found[0] == version:
        return found[1]
    rendered = render()
    if rendered is not None:
        _memory.put(key, version, rendered)
    return rendered


class ArtistContent(NamedTuple):
    """What an artist page shows the same to everyone, rendered."""

    artist_id: int
    display_name: str
    html: str  # the header and the track list, with a Buy placeholder per track


def content(
    slug: str, page: str | None, version: int, render: Callable[[], ArtistContent | None]
) -> ArtistContent | None:
    """The page's shared content at `version`, from Redis while current.

    `render` returns None for a slug that is nobody's: that is not cached.
    """
    key = ":".join(("artist-content", release.current(), slug, str(page or 1)))
    found = cache.get(key)
    if found is not None and found[0] == version:
        return ArtistContent(*found[1])
    rendered = render()
    if rendered is not None:
        cache.set(key, (version, tuple(rendered)))
    return rendered
