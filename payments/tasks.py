from celery import shared_task

from payments import testmode


class DeliveryFailed(Exception):
    pass


@shared_task(
    name="payments.deliver_test_event",
    autoretry_for=(DeliveryFailed, OSError),
    retry_backoff=2,
    max_retries=8,
)
def deliver_test_event(body: str) -> int:
    """Test mode: deliver one signed event to our webhook, retrying like Stripe does."""
    status = testmode.post_event(body)
    if status >= 300:
        raise DeliveryFailed(f"webhook answered {status}")
    return status


@shared_task(name="payments.reconcile")
def reconcile_payments() -> list[str]:
    """Every 15 minutes: settle payments Stripe has decided but we have not heard of."""
    from payments.services import reconcile

    return reconcile()
