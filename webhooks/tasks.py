from celery import shared_task

from webhooks import services


@shared_task(name="webhooks.retry_failed")
def retry_failed_events() -> int:
    """Every 5 minutes: re-run failed events whose backoff has passed."""
    return services.retry_failed()
