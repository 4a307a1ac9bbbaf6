"""The nightly audit: the credit ledger and the books checked together, findings stored.

It reports only; it never fixes. Each finding names its check, what it is about and
what is wrong; `AuditRun` keeps them for admins (newest first in admin).
"""

from __future__ import annotations

import logging

from django.utils import timezone

from books.models import AuditRun
from books.selectors import book_violations
from credits.selectors import ledger_discrepancies

logger = logging.getLogger(__name__)

# What each check means, for the admin page.
CHECKS = {
    "ledger_balance": "A user's ledger entries, lots and cached balance disagree, or a lot "
    "is out of range: credits were gained or lost without an entry.",
    "transaction_balanced": "A journal transaction's lines do not sum to zero (PostgreSQL "
    "refuses to commit one; this finds rows written around it).",
    "deferred_revenue_joint": "Deferred revenue in the books differs from the cost basis the "
    "credit lots still hold: a burn, grant or refund moved credits without its posting.",
    "lot_cost_basis": "A lot's unreleased cost is outside 0..its cost, is not what its lot "
    "links trace, or an empty lot kept some cost.",
}


def run_audit() -> AuditRun:
    """Check the ledger and the books; store and return the run with its findings."""
    started = timezone.now()
    findings = [
        {
            "check": "ledger_balance",
            "subject": f"user {d.user_id} <{d.email}>",
            "problem": d.problem,
        }
        for d in ledger_discrepancies()
    ]
    findings += [violation.as_dict() for violation in book_violations()]
    run = AuditRun.objects.create(
        started_at=started, finished_at=timezone.now(), ok=not findings, findings=findings
    )
    for finding in findings:
        logger.error("audit finding", extra=finding)
    if not findings:
        logger.info("audit clean", extra={"audit_run": run.pk})
    return run
