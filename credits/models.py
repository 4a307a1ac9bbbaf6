"""The credit ledger.

- A *lot* holds the credits of one grant; spending lowers its `remaining`.
- A *ledger entry* records every change, signed, with the lots it touched. Entries
  are append-only: a PostgreSQL trigger refuses UPDATE and DELETE (migration 0002).
- A *wallet* caches each user's balance (sum of entries = sum of lot remainders);
  `rebuild_balance` recomputes it from the entries.
"""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q


class CreditPackage(models.Model):
    """A bundle of credits for sale (seeded by migration, editable in admin)."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=60)
    credits = models.PositiveIntegerField()
    price_cents = models.PositiveIntegerField(help_text="Card price in US cents.")
    # Empty means never; 0 is refused (it would read as "expires at once" and used to
    # act as "never"): there is one way to say never.
    expires_after_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Days after purchase, at least 1; empty means never.",
    )
    is_purchasable = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        db_table = "credits_package"
        ordering = ["sort_order", "price_cents"]
        constraints = [
            models.CheckConstraint(
                condition=Q(credits__gt=0), name="credits_package_credits_positive"
            ),
            models.CheckConstraint(
                condition=Q(expires_after_days__isnull=True) | Q(expires_after_days__gte=1),
                name="credits_package_expiry_days_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.credits} credits)"

    @property
    def price_display(self) -> str:
        return f"${self.price_cents / 100:,.2f}"


class LotSource(models.TextChoices):
    SIGNUP = "signup", "Signup gift"
    PACKAGE = "package", "Package purchase"
    ADMIN = "admin", "Admin grant"
    REFUND = "refund", "Refund"


class CreditLot(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amount = models.PositiveIntegerField()
    remaining = models.IntegerField()
    source = models.CharField(max_length=16, choices=LotSource.choices)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    package = models.ForeignKey(CreditPackage, null=True, blank=True, on_delete=models.PROTECT)
    # Cost basis (DESIGN.md, "the books"): what was paid for the lot, in cents, and how
    # much of it no burn has released yet. Free and admin lots cost 0.
    cost_cents = models.PositiveIntegerField(default=0, help_text="What was paid, in cents.")
    cost_left_cents = models.PositiveIntegerField(
        default=0, help_text="Cost not yet released by a spend, expiry or void."
    )
    # Credits given back (a failed generation, a refunded purchase) come from this lot:
    # they keep its package and cost, and a refund of its payment voids them too.
    origin_lot = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="given_back_lots",
        db_index=False,
    )
    # Unique through Meta.constraints: a plain unique index, without the second
    # (varchar_pattern_ops) index Django adds for unique=True, which no query uses.
    grant_key = models.CharField(max_length=200)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "credits_lot"
        constraints = [
            models.UniqueConstraint(fields=["grant_key"], name="credits_lot_grant_key_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="credits_lot_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0), name="credits_lot_remaining_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(remaining__lte=F("amount")), name="credits_lot_remaining_lte_amount"
            ),
            models.CheckConstraint(
                condition=Q(cost_left_cents__lte=F("cost_cents")),
                name="credits_lot_cost_left_lte_cost",
            ),
            # The last credit burned releases the rest of the cost.
            models.CheckConstraint(
                condition=Q(remaining__gt=0) | Q(cost_left_cents=0),
                name="credits_lot_empty_has_released_its_cost",
            ),
        ]
        indexes = [
            models.Index(
                fields=["origin_lot"],
                name="credits_lot_by_origin",
                condition=Q(origin_lot__isnull=False),
            ),
            # Spending and per-user expiry scan only lots with credits left.
            models.Index(
                fields=["user", "expires_at"],
                name="credits_lot_open_by_user",
                condition=Q(remaining__gt=0),
            ),
            models.Index(
                fields=["expires_at"],
                name="credits_lot_open_by_expiry",
                condition=Q(remaining__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"Lot {self.pk}: {self.remaining}/{self.amount} ({self.get_source_display()})"


class Wallet(models.Model):
    """The cached balance of one user: a projection of the ledger, locked to serialise changes."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, primary_key=True, related_name="wallet"
    )
    balance = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "credits_wallet"
        permissions = [("adjust_credits", "Can adjust credits with a reason")]
        constraints = [
            models.CheckConstraint(
                condition=Q(balance__gte=0), name="credits_wallet_balance_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.balance}"


class EntryKind(models.TextChoices):
    GRANT = "grant", "Grant"
    SPEND = "spend", "Spend"
    EXPIRE = "expire", "Expiry"
    REFUND = "refund", "Refund"
    VOID = "void", "Void"
    ADJUST = "adjust", "Adjustment"


class Cause(models.TextChoices):
    USER = "user", "User"
    STAFF = "staff", "Staff"
    STRIPE = "stripe", "Stripe event"
    TASK = "task", "Task"
    SYSTEM = "system", "System"


class LedgerEntry(models.Model):
    # Every ledger row costs an insert into each index; keep only the ones queries use.
    # user: served by credits_entry_by_user; idempotency_key: unique in Meta.constraints
    # (no pattern-ops twin); staff_user: a partial index, as most entries have none.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount = models.IntegerField(help_text="Signed: positive adds credits.")
    balance_after = models.IntegerField()
    idempotency_key = models.CharField(max_length=200)
    cause = models.CharField(max_length=16, choices=Cause.choices)
    cause_ref = models.CharField(
        max_length=200, blank=True, help_text="Stripe event id, task name or similar."
    )
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    reason = models.TextField(blank=True, help_text="Why staff made this change.")
    memo = models.CharField(max_length=300, blank=True)
    reverses = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversed_by",
        help_text="The spend this refund gives back (at most once).",
    )
    lots = models.ManyToManyField(CreditLot, through="LedgerEntryLot", related_name="entries")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "credits_ledger_entry"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"], name="credits_entry_idempotency_key_unique"
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="credits_entry_amount_nonzero"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="credits_entry_balance_after_gte_0"
            ),
            models.CheckConstraint(
                condition=~Q(kind="adjust") | (Q(staff_user__isnull=False) & ~Q(reason="")),
                name="credits_entry_adjust_has_staff_and_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="credits_entry_by_user"),
            models.Index(
                fields=["staff_user"],
                name="credits_entry_by_staff",
                condition=Q(staff_user__isnull=False),
            ),
            # The hourly "credits expired" notices look up recent expiries only.
            models.Index(
                fields=["created_at"],
                name="credits_entry_expiries",
                condition=Q(kind="expire"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount:+d} ({self.idempotency_key})"

    @property
    def balance_before(self) -> int:
        return self.balance_after - self.amount


class LedgerEntryLot(models.Model):
    """How much of an entry's amount fell on one lot (append-only, like entries)."""

    # entry_id lookups use credits_entry_lot_unique (entry, lot): no index of its own.
    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, related_name="lot_links", db_index=False
    )
    lot = models.ForeignKey(CreditLot, on_delete=models.PROTECT, related_name="entry_links")
    amount = models.IntegerField()
    # The change of the lot's unreleased cost, signed like `amount`: a grant adds the
    # lot's cost, a burn releases -cost. Per lot the links sum to cost_left_cents.
    cost_cents = models.IntegerField(default=0)

    class Meta:
        db_table = "credits_ledger_entry_lot"
        constraints = [
            models.UniqueConstraint(fields=["entry", "lot"], name="credits_entry_lot_unique"),
            models.CheckConstraint(condition=~Q(amount=0), name="credits_entry_lot_amount_nonzero"),
        ]

    def __str__(self) -> str:
        return f"entry {self.entry_id} lot {self.lot_id}: {self.amount:+d}"
