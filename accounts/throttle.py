"""Throttle log-ins and password resets, per e-mail and per client address.

Attempts are counted in Redis over a sliding 15-minute window (one sorted set per
e-mail or address, scored by time). When a count reaches its limit, that e-mail or
address is locked out for 15 minutes: every further attempt is refused, even one with
the right password, and the lock-out is logged once (never with the password).

Why not django-axes: it has one failure limit for all its lock-out keys, and we want
10 per e-mail but 50 per address; it does not throttle password resets either. This is
the small Redis counter the cache already gives us.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
import uuid
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from django.core.cache import cache as django_cache

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 15 * 60
LOCKOUT_SECONDS = 15 * 60


@dataclass(frozen=True)
class Limit:
    name: str
    per_email: int
    per_ip: int
    what: str  # for the log line: "failed log-ins"


LOGIN = Limit("login", per_email=10, per_ip=50, what="failed log-ins")
# Every reset request counts, for an e-mail with an account or without: the limit
# must not tell them apart.
PASSWORD_RESET = Limit("reset", per_email=5, per_ip=20, what="password reset requests")


@dataclass(frozen=True)
class Lockout:
    scope: str  # "email" or "ip"
    seconds_left: int

    @property
    def minutes_left(self) -> int:
        return max(1, math.ceil(self.seconds_left / 60))


def _now() -> float:
    return time.time()


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, unless a trusted proxy header is configured.

    With TRUSTED_PROXY_HEADER (say "X-Forwarded-For") and TRUSTED_PROXY_COUNT proxies
    of ours in front of the app, the address is the one our outermost proxy saw: the
    COUNT-th entry from the right. Entries further left are whatever the client sent.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    header = getattr(settings, "TRUSTED_PROXY_HEADER", "")
    if not header:
        return remote
    raw = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    count = max(1, getattr(settings, "TRUSTED_PROXY_COUNT", 1))
    if len(entries) < count:
        return remote
    candidate = entries[-count]
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return remote
    return candidate


def normalize(email: str | None) -> str:
    return (email or "").strip().lower()


def _keys(limit: Limit, scope: str, value: str) -> tuple[str, str]:
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    base = f"throttle:{limit.name}:{scope}:{digest}"
    return django_cache.make_key(base + ":attempts"), django_cache.make_key(base + ":locked")


def _scopes(limit: Limit, request, email: str) -> list[tuple[str, str, int]]:
    scopes = []
    if email:
        scopes.append(("email", email, limit.per_email))
    if request is not None:
        ip = client_ip(request)
        if ip:
            scopes.append(("ip", ip, limit.per_ip))
    return scopes


def lockout(limit: Limit, *, request, email: str | None) -> Lockout | None:
    """The lock-out in force for this e-mail or this request's address, if any."""
    now = _now()
    for scope, value, _ in _scopes(limit, request, normalize(email)):
        _, locked_key = _keys(limit, scope, value)
        until = _redis().get(locked_key)
        if until is not None and float(until) > now:
            return Lockout(scope=scope, seconds_left=math.ceil(float(until) - now))
    return None


def record_attempt(limit: Limit, *, request, email: str | None) -> Lockout | None:
    """Count one attempt; lock out each e-mail or address that reaches its limit."""
    now = _now()
    email = normalize(email)
    locked = None
    for scope, value, maximum in _scopes(limit, request, email):
        attempts_key, locked_key = _keys(limit, scope, value)
        pipe = _redis().pipeline(transaction=True)
        pipe.zremrangebyscore(attempts_key, "-inf", now - WINDOW_SECONDS)
        pipe.zadd(attempts_key, {f"{now:.6f}:{uuid.uuid4().hex}": now})
        pipe.zcard(attempts_key)
        pipe.expire(attempts_key, WINDOW_SECONDS)
        count = pipe.execute()[2]
        if count < maximum:
            continue
        until = now + LOCKOUT_SECONDS
        pipe = _redis().pipeline(transaction=True)
        pipe.get(locked_key)
        pipe.set(locked_key, repr(until), ex=LOCKOUT_SECONDS)
        pipe.delete(attempts_key)  # the count starts afresh when the lock ends
        previous = pipe.execute()[0]
        if previous is None or float(previous) <= now:  # log each lock-out once
            logger.warning(
                "%s locked out for %d minutes after %d %s in %d minutes: %s %s (from %s)",
                limit.name,
                LOCKOUT_SECONDS // 60,
                count,
                limit.what,
                WINDOW_SECONDS // 60,
                "e-mail" if scope == "email" else "address",
                value,
                client_ip(request) if request is not None else "unknown address",
            )
        locked = locked or Lockout(scope=scope, seconds_left=LOCKOUT_SECONDS)
    return locked


def clear(limit: Limit, *, email: str | None) -> None:
    """Forget an e-mail's attempts (after a successful log-in)."""
    email = normalize(email)
    if email:
        attempts_key, _ = _keys(limit, "email", email)
        _redis().delete(attempts_key)
