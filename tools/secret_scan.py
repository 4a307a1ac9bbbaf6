"""Fail when the tree holds a secret: Stripe keys, webhook signing secrets, private keys.

`python -m tools.secret_scan [ROOT]` reads every file git knows of under ROOT (tracked,
plus untracked files that are not ignored) and exits 1 naming each file and line that
holds one; the secret itself is never printed, only its kind and first characters.

A line that must hold an obviously fake value (a test fixture) says so explicitly with
the marker `secret-scan: allow` on the same line; nothing else is exempt. Dependency
free on purpose: CI runs it before anything is installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ALLOW_MARKER = "secret-scan: allow"
PATTERNS = [
    ("Stripe secret key", re.compile(r"\bsk_(?:live|test)_[0-9A-Za-z]{8,}")),
    ("Stripe restricted key", re.compile(r"\brk_(?:live|test)_[0-9A-Za-z]{8,}")),
    ("Stripe webhook signing secret", re.compile(r"\bwhsec_[0-9A-Za-z+/=]{8,}")),
    ("private key", re.compile(r"-----BEGIN[A-Z0-9 ]* PRIVATE KEY(?: BLOCK)?-----")),
]


def tracked_files(root: Path) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    names = sorted({name for name in listed.decode().split("\0") if name})
    return [root / name for name in names]


def _text(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None  # deleted in the work tree, a submodule, a broken link
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", errors="replace")


def findings(root: Path) -> list[tuple[str, int, str, str]]:
    """(file, line number, kind, redacted value) for every secret found."""
    found = []
    for path in tracked_files(root):
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if ALLOW_MARKER in line:
                continue
            for kind, pattern in PATTERNS:
                for match in pattern.finditer(line):
                    redacted = match.group()[:8] + "…"
                    found.append((str(path.relative_to(root)), number, kind, redacted))
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else ".").resolve()
    found = findings(root)
    for name, number, kind, redacted in found:
        print(f"{name}:{number}: {kind} ({redacted})")
    if found:
        print(
            f"secret scan: {len(found)} secret(s) found. Remove them (and rotate them: a "
            f"committed secret is a leaked one); a fake test value needs `{ALLOW_MARKER}` "
            "on its line.",
            file=sys.stderr,
        )
        return 1
    print("secret scan: no secrets found")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
