"""Claiming and sending receipts and notices (see notices.models for the rules).

A change that owes an e-mail calls `claim` in its own transaction; the daily job
calls `claim_expiring_lots` and the hourly expiry `claim_expired`. Each claim that
is new queues `notices.send` after commit, and `send` renders and sends it once,
unless the user unsubscribed from notices (receipts are always sent) or there is
nothing left to say (the lot was spent or expired before the e-mail went out).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core import signing
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from core import mail
from core.queue import delay_on_commit
from credits.selectors import EXPIRY_WARNING
from notices import messages
from notices.models import RECEIPT_KINDS, Notice, NoticeKind

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "notices.unsubscribe"
# The expiry entries the hourly job looks back over for "credits expired" notices:
# wider than its schedule, so a late or failed run still notices every expiry.
EXPIRED_LOOKBACK = dt.timedelta(days=2)


def _now() -> dt.datetime:
    return timezone.now()


def _queue(notice_ids: list[int]) -> None:
    from notices.tasks import send_notice

    for notice_id in notice_ids:
        delay_on_commit(send_notice, notice_id)


# An e-mail still unsent this long after its claim lost its task (the broker was down at
# commit, or the worker died); older than SWEEP_UNTIL, it is no longer worth sending.
SWEEP_AFTER = dt.timedelta(minutes=10)
SWEEP_UNTIL = dt.timedelta(days=7)


def unsent(*, now: dt.datetime | None = None) -> list[int]:
    """Claimed e-mails that were neither sent nor skipped and whose task was lost."""
    now = now or _now()
    return list(
        Notice.objects.filter(
            sent_at__isnull=True,
            skipped="",
            created_at__lte=now - SWEEP_AFTER,
            created_at__gt=now - SWEEP_UNTIL,
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


_CLAIM_SQL = """
INSERT INTO notices_notice
    (user_id, kind, key, lot_id, ledger_entry_id, payment_id, subscription_id, created_at,
     skipped)
SELECT u.id, %(kind)s, %(key)s, %(lot)s, %(entry)s, %(payment)s, %(subscription)s, %(now)s, ''
FROM accounts_user u
WHERE u.id = %(user)s AND (%(receipt)s OR u.email_notices)
ON CONFLICT (key) DO NOTHING
RETURNING id
"""


def claim(
    *,
    user_id: int,
    kind: str,
    key: str,
    lot_id: int | None = None,
    ledger_entry_id: int | None = None,
    payment_id: int | None = None,
    subscription_id: int | None = None,
) -> int | None:
    """Claim the e-mail of one cause, in the caller's transaction; queue it after commit.

    Returns the new notice's id, or None when the cause has its e-mail already (or it
    is a notice and the user unsubscribed from notices).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            {
                "user": user_id,
                "kind": kind,
                "key": key,
                "lot": lot_id,
                "entry": ledger_entry_id,
                "payment": payment_id,
                "subscription": subscription_id,
                "now": _now(),
                "receipt": kind in RECEIPT_KINDS,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    _queue([row[0]])
    return row[0]


def claim_receipt(*, payment) -> int | None:
    """The receipt of a card payment of a credit package or of Essential."""
    kind = {
        "credit_package": NoticeKind.PACKAGE_RECEIPT,
        "essential": NoticeKind.ESSENTIAL_RECEIPT,
    }[payment.purpose]
    return claim(
        user_id=payment.user_id,
        kind=kind,
        key=f"receipt:payment:{payment.pk}",
        payment_id=payment.pk,
    )


# Lots are claimed in id order, so concurrent runs wait for each other on the same
# keys instead of deadlocking, and the later run's inserts all do nothing.
_CLAIM_EXPIRING_SQL = """
INSERT INTO notices_notice (user_id, kind, key, lot_id, created_at, skipped)
SELECT l.user_id, 'credits_expiring', 'expiring:lot:' || l.id, l.id, %(now)s, ''
FROM credits_lot l
JOIN accounts_user u ON u.id = l.user_id
WHERE l.remaining > 0 AND l.expires_at > %(now)s AND l.expires_at <= %(soon)s
  AND u.email_notices AND u.is_active
ORDER BY l.id
ON CONFLICT (key) DO NOTHING
RETURNING id
"""


def claim_expiring_lots(*, now: dt.datetime | None = None) -> int:
    """The daily job: one notice per lot that expires within 3 days, once per lot.

    Safe to run twice or concurrently: a lot's notice is one unique row, claimed in
    this transaction. Returns how many notices it claimed.
    """
    now = now or _now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_EXPIRING_SQL, {"now": now, "soon": now + EXPIRY_WARNING})
        ids = [row[0] for row in cursor.fetchall()]
        _queue(ids)
    return len(ids)


# One notice per user and expiry run (the entries of one run share their moment),
# keyed by the run's first entry of that user.
_CLAIM_EXPIRED_SQL = """
INSERT INTO notices_notice (user_id, kind, key, ledger_entry_id, created_at, skipped)
SELECT user_id, 'credits_expired', 'expired:entry:' || id, id, %(now)s, ''
FROM (
    SELECT DISTINCT ON (e.user_id, e.created_at) e.id, e.user_id
    FROM credits_ledger_entry e
    JOIN accounts_user u ON u.id = e.user_id
    WHERE e.kind = 'expire' AND e.created_at > %(since)s AND e.created_at <= %(now)s
      AND u.email_notices AND u.is_active
    ORDER BY e.user_id, e.created_at, e.id
) AS runs
ORDER BY id
ON CONFLICT (key) DO NOTHING
RETURNING id
"""


def claim_expired(*, now: dt.datetime | None = None) -> int:
    """After the hourly expiry: one notice per user whose credits just expired."""
    now = now or _now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_EXPIRED_SQL, {"now": now, "since": now - EXPIRED_LOOKBACK})
        ids = [row[0] for row in cursor.fetchall()]
        _queue(ids)
    return len(ids)


# --- Sending -----------------------------------------------------------------------


def unsubscribe_token(user) -> str:
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(str(user.pk))


def user_id_for_token(token: str) -> int | None:
    """The user a signed unsubscribe token names; None if it was not signed by us."""
    try:
        return int(signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None


def unsubscribe_url(user) -> str:
    return mail.absolute(reverse("notices_unsubscribe", kwargs={"token": unsubscribe_token(user)}))


def _skip(notice: Notice, why: str) -> bool:
    notice.skipped = why[:100]
    notice.save(update_fields=["skipped"])
    logger.info("notice skipped", extra={"notice_id": notice.pk, "why": why})
    return False


def send(*, notice_id: int) -> bool:
    """Send one claimed e-mail, once; False if it was sent or skipped already, or is
    skipped now. Runs in a Celery task; the row lock makes a second run wait, then
    find it sent."""
    with transaction.atomic():
        notice = Notice.objects.select_for_update().select_related("user").get(pk=notice_id)
        if notice.sent_at is not None or notice.skipped:
            return False
        receipt = notice.kind in RECEIPT_KINDS
        if not receipt and not notice.user.email_notices:
            return _skip(notice, "unsubscribed from notices")
        message = messages.build(notice)
        if message is None:
            return _skip(notice, "nothing left to tell")
        mail.send(
            to=notice.user.email,
            subject=message.subject,
            template=message.template,
            context={"user": notice.user, **message.context},
            unsubscribe_url="" if receipt else unsubscribe_url(notice.user),
        )
        notice.sent_at = _now()
        notice.save(update_fields=["sent_at"])
    logger.info("notice sent", extra={"notice_id": notice.pk, "kind": notice.kind})
    return True
