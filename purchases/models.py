"""Fans buying tracks: one row per purchase, paid with credits or by card.

The price is fixed when the fan presses Buy (`price_credits`, and `amount_cents`
for a card), so a later price change never alters a purchase already started. The
split (value, card fee, SoundStudio's fee, the artist's earnings) is stored when the
purchase completes; the money itself lives in the books.

PostgreSQL holds the invariants: at most one *live* purchase per fan and track (a
partial unique index, so concurrent Buy clicks cannot make two), a credit purchase
paid by a ledger entry and a card purchase by a Payment, and a split that adds up.
Statuses move only through `purchases.services.set_status`.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class PurchaseStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for the card payment
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"  # the last card attempt failed (or, flagged, a mismatch)
    CANCELED = "canceled", "Canceled"
    REFUNDED = "refunded", "Refunded"
    DISPUTED = "disputed", "Disputed"


class PaymentMethod(models.TextChoices):
    CREDITS = "credits", "Credits"
    CARD = "card", "Card"


class PurchaseFlag(models.TextChoices):
    NONE = "", "None"
    AMOUNT_MISMATCH = "amount_mismatch", "Stripe's amount or currency differs from ours"


# A live purchase owns the track or may still come to: it blocks a second one. A
# failed card attempt stays live (the fan retries with the same PaymentIntent, which
# may still succeed); one flagged for admins does not, so the fan can buy again.
LIVE = Q(status__in=["pending", "completed", "disputed"]) | Q(status="failed", flag="")


class Purchase(models.Model):
    # fan: served by purchases_by_fan and the unique index, no index of its own.
    fan = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="purchases",
        db_index=False,
    )
    # PROTECT: a track with purchases is part of the money history and cannot be deleted.
    track = models.ForeignKey("tracks.Track", on_delete=models.PROTECT, related_name="purchases")
    status = models.CharField(
        max_length=16, choices=PurchaseStatus.choices, default=PurchaseStatus.PENDING
    )
    payment_method = models.CharField(max_length=8, choices=PaymentMethod.choices)

    # The price, fixed at Buy.
    price_credits = models.PositiveIntegerField()
    amount_cents = models.PositiveIntegerField(help_text="The card price, fixed at Buy.")
    currency = models.CharField(max_length=3, default="usd")

    # What paid for it: a spend of credits, or a card payment.
    ledger_entry = models.OneToOneField(
        "credits.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payment = models.OneToOneField(
        "payments.Payment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="purchase",
    )

    # The split, in cents, set on completion: value = card fee + platform fee + earnings.
    value_cents = models.PositiveIntegerField(
        null=True, blank=True, help_text="Card amount, or the released cost of the credits."
    )
    card_fee_cents = models.PositiveIntegerField(null=True, blank=True)
    platform_fee_cents = models.PositiveIntegerField(null=True, blank=True)
    artist_earnings_cents = models.IntegerField(null=True, blank=True)

    # Card refunds and disputes (cents of the card amount).
    refunded_cents = models.PositiveIntegerField(default=0)
    disputed_cents = models.PositiveIntegerField(
        default=0, help_text="Held by the open dispute: access and earnings suspended."
    )
    stripe_dispute_id = models.CharField(max_length=255, blank=True)

    flag = models.CharField(max_length=32, choices=PurchaseFlag.choices, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    refunded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    refund_reason = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    receipt_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("refund_purchase", "Can refund purchases with a reason")]
        constraints = [
            models.UniqueConstraint(
                fields=["fan", "track"],
                condition=LIVE,
                name="purchases_one_live_per_fan_and_track",
            ),
            models.CheckConstraint(
                condition=Q(price_credits__gte=1), name="purchases_price_positive"
            ),
            models.CheckConstraint(
                condition=Q(payment_method="credits", payment__isnull=True)
                | Q(payment_method="card", ledger_entry__isnull=True),
                name="purchases_paid_one_way",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["completed", "disputed", "refunded"])
                | Q(ledger_entry__isnull=False)
                | Q(payment__isnull=False),
                name="purchases_completed_has_its_payment",
            ),
            models.CheckConstraint(
                condition=Q(value_cents__isnull=True)
                | Q(
                    value_cents=F("card_fee_cents")
                    + F("platform_fee_cents")
                    + F("artist_earnings_cents")
                ),
                name="purchases_split_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(refunded_cents__lte=F("amount_cents")),
                name="purchases_refund_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(flag="") | Q(status="failed"), name="purchases_flag_only_when_failed"
            ),
        ]
        indexes = [models.Index(fields=["fan", "-created_at"], name="purchases_by_fan")]

    def __str__(self) -> str:
        return f"Purchase {self.pk}: {self.track_id} by {self.fan_id} ({self.status})"

    @property
    def paid_with_promotional_credits(self) -> bool:
        """Credits that carried no money (a free gift): the artist's sale earned nothing."""
        return self.payment_method == PaymentMethod.CREDITS and self.value_cents == 0
