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
