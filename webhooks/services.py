"""Record Stripe events once and apply each one's effect exactly once.

The event row is the lock: a duplicate delivery (even a concurrent one) waits on
the row, then finds it processed and does nothing. A duplicate of a done event only
reads it (two statements, no row lock, so nothing to flush at commit). A handler
runs inside a savepoint in the same transaction that marks the event processed, so
its ledger entries and the "processed" mark commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from django.db import connection, transaction
from django.utils import timezone

from webhooks.models import EventStatus, WebhookEvent
from webhooks.registry import handler_for

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
DONE = (EventStatus.PROCESSED, EventStatus.IGNORED)


def _now() -> dt.datetime:
    return timezone.now()


def _backoff(attempts: int) -> dt.timedelta:
    """Wait 1, 2, 4 ... minutes (capped at 2 hours) before the next retry."""
    return dt.timedelta(minutes=min(2 ** max(attempts - 1, 0), 120))


def receive(event: dict) -> WebhookEvent:
    """Store a verified event (once per id) and apply it unless that was done already.

    Returns the stored event; its status is FAILED when the handler raised (the
    failure is committed, the handler's partial effects are not).
    """
    # Stripe retries and duplicates are mostly of events already done: answer those
    # with one plain read, outside any transaction.
    known = _stored_summary(event["id"])
    if known is not None and known.status in DONE:
        return known
    with transaction.atomic():
        with connection.cursor() as cursor:
            # One statement stores a new event; a duplicate inserts nothing. While the
            # first delivery's transaction is open, a concurrent duplicate's INSERT waits
            # on the unique index for its outcome.
            cursor.execute(
                "INSERT INTO webhooks_webhookevent"
                " (stripe_event_id, type, payload, status, attempts, last_error, received_at)"
                " VALUES (%s, %s, %s, %s, 0, '', now())"
                " ON CONFLICT (stripe_event_id) DO NOTHING RETURNING id",
                [event["id"], event.get("type", ""), json.dumps(event), EventStatus.RECEIVED],
            )
            inserted = cursor.fetchone()
        if inserted is None:
            # A duplicate. Check without a row lock first: locking a row writes to it
            # (and makes the commit wait for a WAL flush), which a retry storm of
            # already-done events must not pay for.
            stored = _stored_summary(event["id"])
            if stored is None:
                raise WebhookEvent.DoesNotExist(event["id"])
            if stored.status in DONE:
                return stored
        # New, or stored earlier but not done: the row lock makes concurrent
        # deliveries of it wait for this one's outcome. The whole row is loaded at
        # once (the handler and the outcome need most of it).
        pk = inserted[0] if inserted is not None else stored.pk
        stored = WebhookEvent.objects.select_for_update().get(pk=pk)
        if stored.status in DONE:
            return stored
        _apply_locked(stored)
    return stored


def _stored_summary(stripe_event_id: str) -> WebhookEvent | None:
    """The stored event with only id, status and type loaded (the rest deferred).

    What ``WebhookEvent.objects.only("id", "status", "type").get(...)`` returns, in
    one plain statement: a retry storm spends its time here, and compiling the ORM
    query would cost more than running it.
    """
    with connection.cursor() as cursor:
        # Columns in the model's field order, as Model.from_db() expects them.
        cursor.execute(
            "SELECT id, type, status FROM webhooks_webhookevent WHERE stripe_event_id = %s",
            [stripe_event_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return WebhookEvent.from_db(connection.alias, ["id", "type", "status"], row)


def _apply_locked(stored: WebhookEvent) -> None:
    """Run the handler of a locked event and record the outcome on the row."""
    handler = handler_for(stored.type)
    now = _now()
    stored.attempts += 1
    stored.last_error = ""
    stored.next_attempt_at = None
    if handler is None:
        stored.status = EventStatus.IGNORED
        stored.processed_at = now
    else:
        try:
            with transaction.atomic():  # savepoint: a failing handler leaves no partial effect
                handler(stored)
        except Exception as exc:
            logger.exception(
                "webhook handler failed",
                extra={"event_id": stored.stripe_event_id, "type": stored.type},
            )
            stored.status = EventStatus.FAILED
            stored.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
            stored.next_attempt_at = now + _backoff(stored.attempts)
        else:
            stored.status = EventStatus.PROCESSED
            stored.processed_at = now
    stored.save(
        update_fields=["status", "attempts", "last_error", "next_attempt_at", "processed_at"]
    )


def retry_failed(*, now: dt.datetime | None = None, limit: int = 100) -> int:
    """Re-run failed events whose backoff has passed, up to MAX_ATTEMPTS; return the count."""
    now = now or _now()
    retried = 0
    due = (
        WebhookEvent.objects.filter(
            status=EventStatus.FAILED, next_attempt_at__lte=now, attempts__lt=MAX_ATTEMPTS
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in list(due):
        with transaction.atomic():
            stored = (
                WebhookEvent.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, status=EventStatus.FAILED)
                .first()
            )
            if stored is None:  # another worker has it, or it was done meanwhile
                continue
            _apply_locked(stored)
            retried += 1
    return retried


def replay(*, event: WebhookEvent) -> WebhookEvent:
    """Admin: apply an event again now. Handlers are idempotent, so a done event stays done."""
    with transaction.atomic():
        stored = WebhookEvent.objects.select_for_update().get(pk=event.pk)
        _apply_locked(stored)
    return stored
