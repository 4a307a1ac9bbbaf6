from smtplib import SMTPException

from celery import shared_task

from purchases import services


@shared_task(
    name="purchases.send_receipt",
    ignore_result=True,  # nobody waits for it; a result would cost a Redis subscription
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    max_retries=8,
)
def send_receipt(purchase_id: int) -> bool:
    """E-mail one purchase's receipt; harmless when run twice (it is sent once)."""
    return services.send_receipt(purchase_id=purchase_id)
