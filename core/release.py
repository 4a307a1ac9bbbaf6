"""Which release of the code is running: the key that separates what each release
caches of its own rendering (artist pages), so a rolling deploy never serves a page
drawn by other templates or linking other static files.

`RELEASE` from the environment (a deploy sets it, e.g. to the git commit), otherwise a
digest of the templates and static files, computed once per process.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from django.conf import settings


@cache
def current() -> str:
    if value := os.environ.get("RELEASE", "").strip():
        return value
    digest = hashlib.blake2b(digest_size=6)
    roots = [Path(settings.BASE_DIR) / "templates", Path(settings.BASE_DIR) / "static"]
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(settings.BASE_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
