from django.db import models


class EventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"
    IGNORED = "ignored", "Ignored (no handler)"


class WebhookEvent(models.Model):
    """One Stripe event, stored once per Stripe event id, with how handling went."""

    stripe_event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=EventStatus.choices, default=EventStatus.RECEIVED, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhooks_event_retry_due",
                condition=models.Q(status="failed"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id} ({self.status})"

    @property
    def data_object(self) -> dict:
        return self.payload.get("data", {}).get("object", {})
