"""Stripe-Signature verification and signing, without the Stripe SDK.

The header is ``t=<unix seconds>,v1=<hex>[,v1=<hex>...]``; each ``v1`` is the
HMAC-SHA256, keyed with a webhook secret, of ``b"<t>." + raw body``. During a
secret roll Stripe sends one ``v1`` per active secret, and we may be configured
with two secrets ourselves, so any ``v1`` matching any of our secrets is accepted.
Unlike the SDK's verifier we also reject timestamps too far in the *future*.

No message or log produced here ever contains a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any

DEFAULT_TOLERANCE = 300
SIGNATURE_SCHEME = "v1"

MISSING_HEADER = "missing Stripe-Signature header"
MALFORMED_HEADER = "malformed Stripe-Signature header"
NOT_CONFIGURED = "no webhook secret configured"
NO_VALID_SIGNATURE = "no valid signature"
TIMESTAMP_OUTSIDE_TOLERANCE = "timestamp outside tolerance"
INVALID_JSON = "invalid JSON payload"


class SignatureError(Exception):
    """The request is not a verified Stripe event; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def _usable_secrets(secrets: Iterable[str]) -> list[str]:
    if isinstance(secrets, str | bytes):
        # A bare string would be iterated character by character.
        raise TypeError("secrets must be a list of strings, not a single string")
    # An empty key is public knowledge: it must never make a signature valid.
    return [secret for secret in secrets if secret]


def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """Return a ``Stripe-Signature`` header value for ``payload``."""
    if not secret:
        raise ValueError(NOT_CONFIGURED)
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},{SIGNATURE_SCHEME}={_signature(payload, secret, t)}"


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
            raise SignatureError(MALFORMED_HEADER)
        if key == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit()):
                raise SignatureError(MALFORMED_HEADER)
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            signatures.append(value)
        # Other schemes (v0, future ones) are ignored, as Stripe documents.
    if timestamp is None or not signatures:
        raise SignatureError(MALFORMED_HEADER)
    return timestamp, signatures


def verify(
    payload: bytes,
    header: str | None,
    secrets: Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: int | None = None,
) -> dict[str, Any]:
    """Verify a Stripe webhook and return its parsed event.

    ``payload`` must be the raw request body. Raises ``SignatureError`` when the
    header is missing or malformed, no ``v1`` signature matches any secret, the
    timestamp is more than ``tolerance`` seconds in the past or the future, or
    the body is not a JSON object.
    """
    keys = _usable_secrets(secrets)
    if not header or not header.strip():
        raise SignatureError(MISSING_HEADER)
    timestamp, provided = _parse_header(header)
    if not keys:
        raise SignatureError(NOT_CONFIGURED)

    # Header values may hold any character; compare bytes so that a non-ASCII
    # value is simply a mismatch (compare_digest refuses non-ASCII str).
    provided_bytes = [value.encode("utf-8", "replace") for value in provided]
    matched = False
    for key in keys:
        expected = _signature(payload, key, timestamp).encode("ascii")
        for value in provided_bytes:
            # No short-circuit: the work done does not depend on where a match is.
            matched |= hmac.compare_digest(expected, value)
    if not matched:
        raise SignatureError(NO_VALID_SIGNATURE)

    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(TIMESTAMP_OUTSIDE_TOLERANCE)

    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError
        raise SignatureError(INVALID_JSON) from None
    if not isinstance(event, dict):
        raise SignatureError(INVALID_JSON)
    return event
