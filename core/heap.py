"""Freeze the objects of a started web process out of the garbage collector's way.

A Django process starts with some hundred thousand objects (modules, URL patterns,
models, settings) that live as long as it does. Python's cyclic garbage collector
walks all of them at every full collection; a page that allocates a lot (the artist
page builds a 15 kB page from a few hundred pieces) triggers collections often enough
that those walks were a tenth of its time. `gc.freeze()` moves what exists at startup
to a permanent generation the collector skips (and, before gunicorn forks, keeps the
workers from copying it on write). Objects made later are collected as usual.
"""

from __future__ import annotations

import gc


def freeze_after_startup() -> int:
    """Load what a request would load first (the URL patterns and their views), then
    freeze the heap; returns how many objects are frozen."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module
    gc.collect()  # what is garbage already is not kept for ever
    gc.freeze()
    return gc.get_freeze_count()
