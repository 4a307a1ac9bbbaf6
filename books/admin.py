from django.contrib import admin
from django.db.models import Sum
from django.utils.html import format_html, format_html_join

from books import money
from books.audit import CHECKS
from books.models import NORMAL_SIDE, Account, AuditRun, JournalLine, JournalTransaction, NormalSide
from core.admin_base import ReadOnlyAdmin, ReadOnlyInline


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["key", "code", "artist", "normal_side", "balance_display"]
    list_filter = ["code"]
    search_fields = ["key", "artist__email"]
    list_select_related = ["artist"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(debits=Sum("lines__amount_cents"))

    @admin.display(description="Balance (natural sign)")
    def balance_display(self, obj):
        total = obj.debits or 0
        if NORMAL_SIDE[obj.code] == NormalSide.CREDIT:
            total = -total
        return money.display(total)


class JournalLineInline(ReadOnlyInline):
    model = JournalLine
    fields = ["account", "debit", "credit"]

    @admin.display(description="Debit")
    def debit(self, obj):
        return money.display(obj.amount_cents) if obj.amount_cents > 0 else ""

    @admin.display(description="Credit")
    def credit(self, obj):
        return money.display(-obj.amount_cents) if obj.amount_cents < 0 else ""


@admin.register(JournalTransaction)
class JournalTransactionAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "event", "idempotency_key", "cause", "payment", "memo"]
    list_filter = ["event", "cause"]
    search_fields = ["idempotency_key", "cause_ref", "memo"]
    date_hierarchy = "created_at"
    inlines = [JournalLineInline]
    raw_id_fields = ["payment", "ledger_entry", "staff_user"]


@admin.register(AuditRun)
class AuditRunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "ok", "finding_count"]
    list_filter = ["ok"]
    fields = ["started_at", "finished_at", "ok", "findings_table"]
    readonly_fields = fields

    @admin.display(description="Findings")
    def finding_count(self, obj):
        return len(obj.findings)

    @admin.display(description="Findings")
    def findings_table(self, obj):
        if not obj.findings:
            return "None: the ledger and the books agree."
        rows = format_html_join(
            "",
            "<tr><td><strong>{}</strong><br><small>{}</small></td><td>{}</td><td>{}</td></tr>",
            (
                (f["check"], CHECKS.get(f["check"], ""), f["subject"], f["problem"])
                for f in obj.findings
            ),
        )
        return format_html(
            "<table><tr><th>Check</th><th>About</th><th>Problem</th></tr>{}</table>", rows
        )
