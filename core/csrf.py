"""Django's get_token, with the token's mask drawn from one call to the OS.

Every page with a form carries the CSRF secret masked afresh (BREACH), and Django
draws the 32 characters of each mask with 32 calls to secrets.choice: a quarter of
what the signed-in artist page spends of its own. This draws them from one
secrets.token_bytes, keeping only bytes that map onto the 62 allowed characters
evenly, and builds the same mask-and-cipher token Django builds (Django unmasks and
checks it as its own). Anything unusual is left to Django's get_token.
"""

from __future__ import annotations

import secrets

from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
from django.middleware.csrf import get_token as django_get_token

_CHARS = CSRF_ALLOWED_CHARS
_N = len(_CHARS)
_INDEX = {char: i for i, char in enumerate(_CHARS)}
_EVEN = 256 - 256 % _N  # bytes below this fall on every character equally often


def get_token(request) -> str:
    secret = request.META.get("CSRF_COOKIE")
    if secret is None or len(secret) != CSRF_SECRET_LENGTH:
        return django_get_token(request)  # a new secret, made and set by Django
    mask = [byte % _N for byte in secrets.token_bytes(2 * CSRF_SECRET_LENGTH) if byte < _EVEN]
    if len(mask) < CSRF_SECRET_LENGTH:  # about once in 10^12 draws
        return django_get_token(request)
    mask = mask[:CSRF_SECRET_LENGTH]
    try:
        cipher = "".join(_CHARS[(_INDEX[c] + m) % _N] for c, m in zip(secret, mask, strict=True))
    except KeyError:
        return django_get_token(request)
    # As Django's get_token: the cookie goes out again, to renew its expiry.
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    return "".join(_CHARS[m] for m in mask) + cipher
