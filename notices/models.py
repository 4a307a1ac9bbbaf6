"""E-mails owed to users: one row per receipt or notice, claimed before it is sent.

The unique `key` names the cause (`expiring:lot:17`, `receipt:payment:42`), so a
cause claims its e-mail once however often the job or webhook that finds it runs,
even concurrently: the claim is an INSERT ... ON CONFLICT DO NOTHING in the same
transaction as the change it reports. `sent_at` makes the send itself happen once.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class NoticeKind(models.TextChoices):
    # Receipts: sent to every user.
    PACKAGE_RECEIPT = "package_receipt", "Receipt: credit package"
    ESSENTIAL_RECEIPT = "essential_receipt", "Receipt: Essential payment"
    # Notices: not sent to users who unsubscribed from notices.
    CREDITS_EXPIRING = "credits_expiring", "Credits expire soon"
    CREDITS_EXPIRED = "credits_expired", "Credits expired"
    ESSENTIAL_RENEWED = "essential_renewed", "Essential renewed"
    ESSENTIAL_RENEWAL_FAILED = "essential_renewal_failed", "Essential failed to renew"
    ESSENTIAL_ENDED = "essential_ended", "Essential ended"


RECEIPT_KINDS = frozenset({NoticeKind.PACKAGE_RECEIPT, NoticeKind.ESSENTIAL_RECEIPT})


class Notice(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32, choices=NoticeKind.choices)
    key = models.CharField(max_length=200, help_text="The cause: one e-mail per key.")
    # What the e-mail is about (one of them, by kind).
    lot = models.ForeignKey(
        "credits.CreditLot", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ledger_entry = models.ForeignKey(
        "credits.LedgerEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    payment = models.ForeignKey(
        "payments.Payment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    skipped = models.CharField(
        max_length=100, blank=True, help_text="Why it was not sent (unsubscribed, spent...)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["key"], name="notices_one_per_cause"),
            models.CheckConstraint(
                condition=Q(sent_at__isnull=True) | Q(skipped=""),
                name="notices_sent_or_skipped_not_both",
            ),
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="notices_by_user")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for user {self.user_id} ({self.key})"
