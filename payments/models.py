"""Card payments (through Stripe or the built-in test gateway) and their states."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Purpose(models.TextChoices):
    CREDIT_PACKAGE = "credit_package", "Credit package"
    TRACK_PURCHASE = "track_purchase", "Track purchase"
    ESSENTIAL = "essential", "Essential subscription"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"
    DISPUTED = "disputed", "Disputed"


class PaymentFlag(models.TextChoices):
    NONE = "", "None"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount or currency differs from ours"


class Payment(models.Model):
    """One card payment of ours (a PaymentIntent, or an Essential invoice): every
    dollar in is a Payment. Statuses move only through services.set_status."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    package = models.ForeignKey(
        "credits.CreditPackage", null=True, blank=True, on_delete=models.PROTECT
    )
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    status = models.CharField(
        max_length=24, choices=PaymentStatus.choices, default=PaymentStatus.PENDING, db_index=True
    )
    stripe_payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_invoice_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True)
    fee_cents = models.PositiveIntegerField(
        null=True, blank=True, help_text="The card fee Stripe charged; empty: unknown."
    )
    flag = models.CharField(max_length=32, choices=PaymentFlag.choices, blank=True, default="")
    client_secret = models.CharField(max_length=255, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    lot = models.OneToOneField(
        "credits.CreditLot", null=True, blank=True, on_delete=models.PROTECT, related_name="payment"
    )
    refund_requested_at = models.DateTimeField(null=True, blank=True)
    refunded_cents = models.PositiveIntegerField(default=0)
    disputed_from = models.CharField(
        max_length=24, blank=True, help_text="The status a dispute suspended (restored if won)."
    )
    refund_shortfall_credits = models.PositiveIntegerField(
        default=0, help_text="Credits already spent or expired when refunded: not recovered."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("use_reconciliation_desk", "Can use the reconciliation desk and its actions"),
            ("view_revenue", "Can see the revenue report"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(purpose="credit_package") | Q(package__isnull=False),
                name="payments_package_payment_has_package",
            ),
            models.CheckConstraint(
                condition=Q(refunded_cents__lte=models.F("amount_cents")),
                name="payments_refunded_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment {self.pk} {self.get_purpose_display()} ${self.amount_cents / 100:.2f}"

    @property
    def amount_display(self) -> str:
        return f"${self.amount_cents / 100:,.2f}"

    @property
    def fee_display(self) -> str:
        return "unknown" if self.fee_cents is None else f"${self.fee_cents / 100:,.2f}"


class AttemptOutcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    DECLINED = "declined", "Declined"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class PaymentAttempt(models.Model):
    """One outcome of a payment: every try is kept, not only the last failure.

    `key` says which try it was (Stripe's id of the failed charge, else the event
    that told us), so a retried or duplicated event does not add a second row.
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="attempts")
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    code = models.CharField(max_length=64, blank=True, help_text="Stripe's decline or error code.")
    message = models.CharField(max_length=500, blank=True)
    key = models.CharField(max_length=255)
    cause_ref = models.CharField(
        max_length=200, blank=True, help_text="The Stripe event, task or person that told us."
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "key"], name="payments_attempt_unique_per_payment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} {self.code}".strip()


class Refund(models.Model):
    """One Stripe refund of a payment, applied once (its id is the business key)."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    stripe_refund_id = models.CharField(max_length=255, unique=True)
    amount_cents = models.PositiveIntegerField()
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    cause_ref = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_cents__gt=0), name="payments_refund_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stripe_refund_id}: ${self.amount_cents / 100:,.2f}"


class TestModeIntent(models.Model):
    """A PaymentIntent of the built-in test gateway (used when no Stripe key is set)."""

    __test__ = False  # not a pytest test class, despite the name

    id = models.CharField(max_length=64, primary_key=True)
    client_secret = models.CharField(max_length=128)
    idempotency_key = models.CharField(max_length=255, unique=True)
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    metadata = models.JSONField(default=dict)
    status = models.CharField(max_length=32, default="requires_payment_method")
    last_error = models.JSONField(null=True, blank=True)
    charge_id = models.CharField(max_length=64, blank=True)
    amount_refunded = models.PositiveIntegerField(default=0)
    refunds = models.JSONField(default=list, help_text="[{id, amount}] in order.")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id


class TestModeCheckout(models.Model):
    """A Checkout Session of the built-in test gateway."""

    __test__ = False

    id = models.CharField(max_length=64, primary_key=True)
    idempotency_key = models.CharField(max_length=255, unique=True)
    metadata = models.JSONField(default=dict)
    status = models.CharField(max_length=16, default="open")
    subscription_id = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id


class TestModeSubscription(models.Model):
    """A Subscription of the built-in test gateway."""

    __test__ = False

    id = models.CharField(max_length=64, primary_key=True)
    customer = models.CharField(max_length=64)
    status = models.CharField(max_length=24, default="active")
    metadata = models.JSONField(default=dict)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.id


class StaffAction(models.Model):
    """A money action taken by staff in admin (refund, settle, replay, cancel), with
    the reason they gave and what came of it. Written by the action's own service."""

    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=32)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="staff_actions"
    )
    subject = models.CharField(max_length=200, blank=True, help_text="What it was done to.")
    reason = models.TextField()
    outcome = models.CharField(max_length=500, blank=True)
    ok = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason=""), name="payments_staff_action_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.staff_user} ({self.created_at:%Y-%m-%d %H:%M})"
