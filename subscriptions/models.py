"""The Essential subscription (state follows Stripe) and the monthly allowance."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class SubscriptionStatus(models.TextChoices):
    INCOMPLETE = "incomplete", "Incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete, expired"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    UNPAID = "unpaid", "Unpaid"
    PAUSED = "paused", "Paused"
    CANCELED = "canceled", "Canceled"


# Statuses in which Essential's benefits (allowance, commercial rights) apply.
BENEFIT_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)
# Statuses that still count as "the user's subscription" (one at a time).
LIVE_STATUSES = (
    SubscriptionStatus.INCOMPLETE,
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
    SubscriptionStatus.UNPAID,
    SubscriptionStatus.PAUSED,
)

ONE_LIVE_CONSTRAINT = "subscriptions_one_live_per_user"


class Subscription(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan = models.CharField(max_length=32, default="essential")
    terms_version = models.CharField(max_length=32)
    stripe_subscription_id = models.CharField(max_length=255, unique=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=24, choices=SubscriptionStatus.choices, db_index=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    # Unix time of the Stripe state last applied: an older event never overwrites it.
    stripe_version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "status"], name="subscriptions_by_user")]
        constraints = [
            # At most one live subscription per user: a second would bill them twice.
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(status__in=LIVE_STATUSES),
                name=ONE_LIVE_CONSTRAINT,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} for {self.user} ({self.status})"

    @property
    def gives_benefits(self) -> bool:
        return self.status in BENEFIT_STATUSES


class AllowancePeriod(models.Model):
    """One calendar month (UTC) of Essential generations for one subscriber."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    month = models.DateField(help_text="The first day of the month (UTC).")
    limit = models.PositiveSmallIntegerField(default=5)
    used = models.PositiveSmallIntegerField(default=0)
    opened_by = models.CharField(max_length=16, default="reset")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "month"], name="subscriptions_one_period"),
            models.CheckConstraint(
                condition=Q(used__lte=F("limit")), name="subscriptions_used_within_limit"
            ),
            models.CheckConstraint(
                condition=Q(month__day=1), name="subscriptions_period_starts_on_the_1st"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.month:%Y-%m}: {self.used}/{self.limit}"

    @property
    def remaining(self) -> int:
        return self.limit - self.used


class AllowanceUse(models.Model):
    """One generation paid from the allowance; given back at most once."""

    period = models.ForeignKey(AllowancePeriod, on_delete=models.PROTECT, related_name="uses")
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    returned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.idempotency_key
