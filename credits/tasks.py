import logging

from celery import shared_task

from credits import selectors, services

logger = logging.getLogger(__name__)


@shared_task(name="credits.expire_credits")
def expire_credits() -> int:
    """Hourly: write off the unused remainder of every lot past its date."""
    expired = services.expire_due()
    logger.info("expired credit lots", extra={"lots": expired})
    return expired


@shared_task(name="credits.audit_ledger")
def audit_ledger() -> int:
    """Nightly: report users whose ledger does not add up. Reports only; never fixes."""
    problems = selectors.ledger_discrepancies()
    for problem in problems:
        logger.error(
            "ledger discrepancy",
            extra={"user_id": problem.user_id, "problem": problem.problem},
        )
    if not problems:
        logger.info("ledger audit clean")
    return len(problems)
