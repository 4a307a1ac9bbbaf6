"""Queue a Celery task after the transaction commits, without failing what committed."""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def delay_on_commit(task, *args) -> None:
    """Queue `task(*args)` once the current transaction commits.

    By then the change that owes the work has committed, so a broker that cannot take
    the task must not turn the request into an error (a webhook would answer 500 for an
    event it applied). The failure is logged, and the work stays owed in the database
    for the periodic sweep that owns it (for e-mail: notices.send_unsent).
    """

    def send():
        try:
            task.delay(*args)
        except Exception:
            logger.exception(
                "could not queue a task; its periodic sweep will pick the work up",
                extra={"task": task.name, "task_args": list(args)},
            )

    transaction.on_commit(send)
