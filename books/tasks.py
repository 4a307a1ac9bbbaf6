from celery import shared_task

from books.audit import run_audit


@shared_task(name="books.audit")
def audit() -> int:
    """Nightly: check the credit ledger and the books; store the findings. Never fixes."""
    return len(run_audit().findings)
