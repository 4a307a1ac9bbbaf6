import logging

from celery import shared_task

from credits import services
from notices import services as notices

logger = logging.getLogger(__name__)


@shared_task(name="credits.expire_credits")
def expire_credits() -> int:
    """Hourly: write off the unused remainder of every lot past its date."""
    expired = services.expire_due()
    logger.info("expired credit lots", extra={"lots": expired})
    # Also notices expiries an earlier run (or a spend's own write-off) made.
    notices.claim_expired()
    return expired
