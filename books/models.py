"""The books: a double-entry journal of money, in integer cents, beside the credit ledger.

- An *account* is one of the fixed accounts of DESIGN.md, or one `artist_payable`
  account per artist. Its balance in natural sign is the sum of its lines, negated for
  the accounts that live on the credit side (liabilities and income).
- A *journal transaction* is one movement of money: a unique idempotency key derived
  from its cause, and lines that sum to exactly zero (positive = debit, negative =
  credit). PostgreSQL enforces both: a deferred constraint trigger checks the sum at
  commit, and triggers refuse UPDATE, DELETE and TRUNCATE (migration 0001).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class AccountCode(models.TextChoices):
    CASH = "cash", "Cash (at Stripe)"
    PROCESSOR_FEES = "processor_fees", "Card processing fees"
    DEFERRED_REVENUE = "deferred_revenue", "Deferred revenue (paid credits not yet used)"
    REVENUE_USAGE = "revenue_usage", "Revenue: credits used on generation"
    REVENUE_BREAKAGE = "revenue_breakage", "Revenue: paid credits that expired"
    REVENUE_SUBSCRIPTIONS = "revenue_subscriptions", "Revenue: Essential subscriptions"
    REVENUE_PLATFORM_FEES = "revenue_platform_fees", "Revenue: platform fees on fan purchases"
    REFUNDS = "refunds", "Refunds (not recovered)"
    ARTIST_PAYABLE = "artist_payable", "Owed to an artist"


class NormalSide(models.TextChoices):
    DEBIT = "debit", "Debit (assets, expenses, contra-revenue)"
    CREDIT = "credit", "Credit (liabilities, income)"


# Which side each account's balance lives on (DESIGN.md: "natural sign").
NORMAL_SIDE = {
    AccountCode.CASH: NormalSide.DEBIT,
    AccountCode.PROCESSOR_FEES: NormalSide.DEBIT,
    AccountCode.REFUNDS: NormalSide.DEBIT,
    AccountCode.DEFERRED_REVENUE: NormalSide.CREDIT,
    AccountCode.REVENUE_USAGE: NormalSide.CREDIT,
    AccountCode.REVENUE_BREAKAGE: NormalSide.CREDIT,
    AccountCode.REVENUE_SUBSCRIPTIONS: NormalSide.CREDIT,
    AccountCode.REVENUE_PLATFORM_FEES: NormalSide.CREDIT,
    AccountCode.ARTIST_PAYABLE: NormalSide.CREDIT,
}


class Account(models.Model):
    # "cash", ..., or "artist_payable:<user id>": what postings name an account by.
    key = models.CharField(max_length=64, unique=True)
    code = models.CharField(max_length=32, choices=AccountCode.choices)
    artist = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payable_account",
    )
    normal_side = models.CharField(max_length=6, choices=NormalSide.choices)

    class Meta:
        db_table = "books_account"
        ordering = ["code", "artist_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(code="artist_payable", artist__isnull=False)
                | (~Q(code="artist_payable") & Q(artist__isnull=True)),
                name="books_account_artist_iff_payable",
            ),
        ]

    def __str__(self) -> str:
        if self.artist_id:
            return f"artist_payable ({self.artist})"
        return self.code


class JournalCause(models.TextChoices):
    STRIPE = "stripe", "Stripe event"
    PAYMENT = "payment", "Payment"
    LEDGER = "ledger", "Credit ledger entry"
    TASK = "task", "Task"
    STAFF = "staff", "Staff user"
    SYSTEM = "system", "System"
    BACKFILL = "backfill", "Backfill from earlier data"


class JournalTransaction(models.Model):
    """One movement of money. Append-only; a correction is a new transaction."""

    idempotency_key = models.CharField(max_length=200)
    event = models.CharField(max_length=48, help_text="The business event, e.g. package_paid.")
    cause = models.CharField(max_length=16, choices=JournalCause.choices)
    cause_ref = models.CharField(max_length=200, blank=True)
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    reason = models.TextField(blank=True)
    memo = models.CharField(max_length=300, blank=True)
    payment = models.ForeignKey(
        "payments.Payment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="journal_transactions",
        db_index=False,
    )
    ledger_entry = models.ForeignKey(
        "credits.LedgerEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="journal_transactions",
        db_index=False,
    )
    created_at = models.DateTimeField()

    class Meta:
        db_table = "books_journal_transaction"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"], name="books_transaction_key_unique"
            ),
            models.CheckConstraint(
                condition=~Q(cause="staff") | (Q(staff_user__isnull=False) & ~Q(reason="")),
                name="books_transaction_staff_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="books_transaction_by_time"),
            models.Index(
                fields=["payment"],
                name="books_transaction_by_payment",
                condition=Q(payment__isnull=False),
            ),
            models.Index(
                fields=["ledger_entry"],
                name="books_transaction_by_entry",
                condition=Q(ledger_entry__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} ({self.idempotency_key})"


class JournalLine(models.Model):
    """One leg of a transaction: positive debits the account, negative credits it."""

    transaction = models.ForeignKey(
        JournalTransaction, on_delete=models.PROTECT, related_name="lines"
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lines")
    amount_cents = models.BigIntegerField()

    class Meta:
        db_table = "books_journal_line"
        constraints = [
            models.CheckConstraint(condition=~Q(amount_cents=0), name="books_line_amount_nonzero"),
        ]

    def __str__(self) -> str:
        side = "Dr" if self.amount_cents > 0 else "Cr"
        return f"{side} {self.account_id} {abs(self.amount_cents)}"


class AuditRun(models.Model):
    """One run of the nightly audit (credit ledger and books), with what it found."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    findings = models.JSONField(
        default=list, help_text="[{check, subject, problem}]: empty when all is well."
    )

    class Meta:
        db_table = "books_audit_run"
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Audit {self.started_at:%Y-%m-%d %H:%M}: {'ok' if self.ok else 'findings'}"
