"""Backfill the books from the payments, lots and ledger entries written before them.

For every lot, its links are replayed in entry order to give each burn its release
(floor(cost_left x k / r), the last credit the rest), which is written on the link
(the append-only trigger is lifted for this one statement) and leaves the lot's
unreleased cost. Then the postings the code would have made are written, under the
same keys it uses, so a replayed event after the migration changes nothing:

- a package payment that succeeded: cash / deferred revenue;
- each burn that released cost: to revenue_usage (spends), revenue_breakage
  (expiry, staff removals, voids without a refund);
- a refunded payment: the voids of its refund back out of deferred revenue, what
  was refunded from cash, the rest to `refunds`; one Refund row per payment.

Card fees of old payments are unknown (left empty). Credits given back before this
migration came back as free lots: they keep costing nothing.
"""

from collections import defaultdict

from django.db import migrations

BURN_ACCOUNT = {
    "spend": "revenue_usage",
    "expire": "revenue_breakage",
    "adjust": "revenue_breakage",
    "void": "revenue_breakage",
}
EVENT = {
    "spend": "credits_used",
    "expire": "credits_expired",
    "adjust": "credits_removed_by_staff",
    "void": "credits_voided",
}


def _release(cost_left: int, remaining: int, burned: int) -> int:
    return cost_left if burned == remaining else cost_left * burned // remaining


def backfill(apps, schema_editor):
    CreditLot = apps.get_model("credits", "CreditLot")
    LedgerEntry = apps.get_model("credits", "LedgerEntry")
    LedgerEntryLot = apps.get_model("credits", "LedgerEntryLot")
    Payment = apps.get_model("payments", "Payment")
    Refund = apps.get_model("payments", "Refund")
    Account = apps.get_model("books", "Account")
    JournalTransaction = apps.get_model("books", "JournalTransaction")
    JournalLine = apps.get_model("books", "JournalLine")
    accounts = {a.key: a.pk for a in Account.objects.filter(artist__isnull=True)}

    def post(key, event, lines, created_at, *, payment_id=None, entry_id=None, memo=""):
        lines = [(account, cents) for account, cents in lines if cents]
        if not lines or JournalTransaction.objects.filter(idempotency_key=key).exists():
            return
        assert sum(cents for _, cents in lines) == 0, (key, lines)
        t = JournalTransaction.objects.create(
            idempotency_key=key,
            event=event,
            cause="backfill",
            cause_ref="books.0002_backfill",
            memo=memo,
            payment_id=payment_id,
            ledger_entry_id=entry_id,
            created_at=created_at,
        )
        JournalLine.objects.bulk_create(
            JournalLine(transaction=t, account_id=accounts[account], amount_cents=cents)
            for account, cents in lines
        )

    # 1. Releases on the links, and each lot's unreleased cost.
    link_costs: list[tuple[int, int]] = []
    released_by_entry: dict[int, int] = defaultdict(int)
    for lot in CreditLot.objects.order_by("id").iterator():
        remaining = cost_left = 0
        for link in LedgerEntryLot.objects.filter(lot_id=lot.pk).order_by("entry_id", "id"):
            if link.amount > 0:
                cost = lot.cost_cents if remaining == 0 and cost_left == 0 else 0
                remaining += link.amount
                cost_left += cost
                link_costs.append((link.pk, cost))
            else:
                burned = min(-link.amount, remaining)
                release = _release(cost_left, remaining, burned) if burned else 0
                remaining -= burned
                cost_left -= release
                link_costs.append((link.pk, -release))
                released_by_entry[link.entry_id] += release
        if lot.remaining == 0:
            cost_left = 0
        CreditLot.objects.filter(pk=lot.pk).update(cost_left_cents=min(cost_left, lot.cost_cents))
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE credits_ledger_entry_lot"
            " DISABLE TRIGGER credits_ledger_entry_lot_append_only"
        )
        for link_id, cost in link_costs:
            if cost:
                cursor.execute(
                    "UPDATE credits_ledger_entry_lot SET cost_cents = %s WHERE id = %s",
                    [cost, link_id],
                )
        cursor.execute(
            "ALTER TABLE credits_ledger_entry_lot"
            " ENABLE TRIGGER credits_ledger_entry_lot_append_only"
        )

    # 2. Money in: package payments that succeeded (refunded ones succeeded first).
    refund_voids = {}
    for payment in Payment.objects.filter(
        purpose="credit_package", status__in=["succeeded", "refunded"], lot__isnull=False
    ).select_related("lot"):
        paid = payment.lot.cost_cents
        post(
            f"books:paid:{payment.stripe_payment_intent_id}",
            "package_paid",
            [("cash", paid), ("deferred_revenue", -paid)],
            payment.completed_at or payment.created_at,
            payment_id=payment.pk,
        )
        if payment.status == "refunded":
            refund_voids[f"void:refund:{payment.stripe_payment_intent_id}"] = payment

    # 3. Releases: each burn entry's released cost leaves deferred revenue.
    refund_released: dict[int, int] = defaultdict(int)
    for entry in LedgerEntry.objects.filter(pk__in=list(released_by_entry)).order_by("id"):
        cents = released_by_entry[entry.pk]
        if not cents or entry.kind not in BURN_ACCOUNT:
            continue
        refunded = refund_voids.get(entry.idempotency_key)
        if refunded is not None:
            refund_released[refunded.pk] += cents
            continue
        post(
            f"books:{entry.idempotency_key}",
            EVENT[entry.kind],
            [("deferred_revenue", cents), (BURN_ACCOUNT[entry.kind], -cents)],
            entry.created_at,
            entry_id=entry.pk,
        )

    # 4. Refunds: cash out, the voided credits' cost back, the rest not recovered.
    for payment in refund_voids.values():
        refunded = payment.refunded_cents or payment.amount_cents
        released = refund_released[payment.pk]
        refund_id = f"backfill:{payment.pk}"
        if not Refund.objects.filter(stripe_refund_id=refund_id).exists():
            Refund.objects.create(
                payment=payment,
                stripe_refund_id=refund_id,
                amount_cents=refunded,
                cause_ref="books.0002_backfill",
                created_at=payment.updated_at,
            )
        post(
            f"books:refund:{refund_id}",
            "package_refunded",
            [("deferred_revenue", released), ("refunds", refunded - released), ("cash", -refunded)],
            payment.updated_at,
            payment_id=payment.pk,
        )


class Migration(migrations.Migration):
    dependencies = [("books", "0001_initial")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
