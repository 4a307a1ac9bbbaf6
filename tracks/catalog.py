"""Caches of artist pages, invalidated by a per-artist version number.

Every change that can alter what an artist page shows (publish, price, delete,
profile) sets a new version for the artist's slug after commit. A cached entry
remembers the version it was made under and is used only while that version is
current, so a stale page is never served and nothing needs deleting. Reading the
version and the entry is one Redis round trip.

Three kinds of entry: the page's content (the artist's header and track list, shared
by everyone, with the artist's id so a cached page needs no query for the artist);
the whole page for anonymous visitors, whose page has nothing personal in it; and the
whole page for signed-in visitors as a shell, every personal bit a placeholder that
the view fills in per request (core.shell, purchases.buttons).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from django.core.cache import cache
from django.db import transaction

from core import release


def _version_key(slug: str) -> str:
    return f"artist-version:{slug}"


def changed(*slugs: str) -> None:
    """Invalidate an artist's cached pages once the current transaction commits."""

    def bump():
        now = time.time_ns()
        cache.set_many({_version_key(slug): now for slug in slugs}, None)

    transaction.on_commit(bump)


def _entry_key(kind: str, slug: str, page: str | None, *more: str) -> str:
    """A cached entry's key. The version is shared by every release, so a change
    invalidates them all; each entry is its release's own (core.release), since
    another release's templates and static files would draw it differently."""
    return ":".join((f"artist-{kind}", release.current(), slug, str(page or 1), *more))


def _lookup(slug: str, key: str, session=None) -> tuple[int, object | None]:
    version_key = _version_key(slug)
    # The visitor's session, if given, comes in the same round trip (core.sessions).
    load_with = getattr(session, "load_with", None)
    found = load_with([version_key, key]) if load_with else cache.get_many([version_key, key])
    version, entry = found.get(version_key), found.get(key)
    if version is None:
        cache.add(version_key, time.time_ns(), None)
        version = cache.get(version_key)
    if entry is not None and entry[0] == version:
        return version, entry[1]
    return version, None


def public_page(slug: str, page: str | None) -> bytes | None:
    """The whole page as an anonymous visitor sees it, if cached and current."""
    return _lookup(slug, _entry_key("public", slug, page))[1]


def store_public_page(slug: str, page: str | None, content: bytes, version: int) -> None:
    cache.set(_entry_key("public", slug, page), (version, content))


class ArtistShell(NamedTuple):
    """The whole page as every signed-in visitor sees it, personal bits as placeholders
    (core.shell), with the artist's id for the Buy buttons."""

    artist_id: int
    html: str
    offers: tuple  # purchases.buttons.offers_in(html), read once for every view


def shell(
    slug: str,
    page: str | None,
    variant: str,
    render: Callable[[], ArtistShell | None],
    *,
    session=None,
) -> ArtistShell | None:
    """The signed-in page's shell, from the cache while current; `variant` is what
    the shell depends on besides the page (core.shell.key). Like `content`, a slug
    that is nobody's (`render` returns None) is not cached. The visitor's `session`
    is read in the same round trip when its engine can (core.sessions)."""
    key = _entry_key("shell", slug, page, variant)
    version, found = _lookup(slug, key, session)
    if found is not None:
        return ArtistShell(*found)
    rendered = render()
    if rendered is not None:
        cache.set(key, (version, tuple(rendered)))
    return rendered


def current_version(slug: str) -> int:
    return _lookup(slug, "")[0]


class ArtistContent(NamedTuple):
    """What an artist page shows the same to everyone, rendered."""

    artist_id: int
    display_name: str
    html: str  # the header and the track list, with a Buy placeholder per track


def content(
    slug: str, page: str | None, render: Callable[[], ArtistContent | None]
) -> tuple[int, ArtistContent | None]:
    """The page's shared content (version, content), from the cache while current.

    `render` returns None for a slug that is nobody's: that is not cached.
    """
    key = _entry_key("content", slug, page)
    version, found = _lookup(slug, key)
    if found is not None:
        return version, ArtistContent(*found)
    rendered = render()
    if rendered is not None:
        cache.set(key, (version, tuple(rendered)))
    return version, rendered
