import logging

from celery import shared_task

from subscriptions import services

logger = logging.getLogger(__name__)


@shared_task(name="subscriptions.open_month")
def open_month() -> int:
    """1st of the month, 00:00 UTC: open the new allowance period for every subscriber."""
    opened = services.open_month()
    logger.info("allowance month opened", extra={"periods": opened})
    return opened
