from celery import shared_task


@shared_task(name="core.ping")
def ping(value: str = "pong") -> str:
    """Answer with the value; proves a worker is consuming the queue."""
    return value
