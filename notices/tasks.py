import logging
from smtplib import SMTPException

from celery import shared_task

from notices import services

logger = logging.getLogger(__name__)


@shared_task(
    name="notices.send",
    ignore_result=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    max_retries=8,
)
def send_notice(notice_id: int) -> bool:
    """Send one claimed receipt or notice; harmless when run twice (it is sent once)."""
    return services.send(notice_id=notice_id)


@shared_task(name="notices.expiring_credits")
def expiring_credits() -> int:
    """Daily: one e-mail per lot that expires within 3 days, once per lot."""
    claimed = services.claim_expiring_lots()
    logger.info("expiring-credit notices claimed", extra={"notices": claimed})
    return claimed


@shared_task(name="notices.send_unsent")
def send_unsent(now: str | None = None) -> int:
    """Every 10 minutes: queue again the receipts and notices whose send task was lost
    (the broker was down at commit, or a worker died holding it). Sending is once per
    row, so a sweep that overlaps a slow task sends nothing twice."""
    import datetime as dt

    from purchases import services as purchases
    from purchases.tasks import send_receipt

    moment = dt.datetime.fromisoformat(now) if now else None
    notice_ids = services.unsent(now=moment)
    receipt_ids = purchases.unsent_receipts(
        now=moment or services._now(),
        sweep_after=services.SWEEP_AFTER,
        sweep_until=services.SWEEP_UNTIL,
    )
    for notice_id in notice_ids:
        send_notice.delay(notice_id)
    for purchase_id in receipt_ids:
        send_receipt.delay(purchase_id)
    if notice_ids or receipt_ids:
        logger.warning(
            "unsent e-mail queued again",
            extra={"notices": len(notice_ids), "receipts": len(receipt_ids)},
        )
    return len(notice_ids) + len(receipt_ids)
