from django.contrib import admin, messages
from django.db.models import Sum
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from books import money
from books.models import AccountCode, JournalLine
from core.admin_base import ReadOnlyAdmin, ReadOnlyInline
from core.admin_confirm import DeskActionsMixin, confirm_action
from payments import services
from payments.gateway import GatewayError
from payments.models import Payment, PaymentAttempt, PaymentStatus, Refund, StaffAction


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ["stripe_refund_id", "amount_cents", "created_at", "staff_user", "reason", "cause_ref"]


class PaymentAttemptInline(ReadOnlyInline):
    """Every try and how it ended (declined, failed, canceled, succeeded)."""

    model = PaymentAttempt
    verbose_name_plural = "Attempts"
    fields = ["created_at", "outcome", "code", "message", "cause_ref"]


@admin.register(Payment)
class PaymentAdmin(DeskActionsMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "user",
        "purpose",
        "package",
        "amount_display",
        "status",
        "flag",
        "fee",
        "stripe_payment_intent_id",
        "refunded_cents",
        "refund_shortfall_credits",
    ]
    list_filter = ["status", "purpose", "flag", "package", "created_at"]
    search_fields = ["stripe_payment_intent_id", "stripe_invoice_id", "user__email"]
    list_select_related = ["user", "package"]
    date_hierarchy = "created_at"
    actions = ["refund_through_stripe"]
    readonly_fields = [
        *(f.name for f in Payment._meta.fields if f.name != "client_secret"),
        "fee",
        "unrecovered",
        "journal",
    ]
    exclude = ["client_secret"]
    inlines = [PaymentAttemptInline, RefundInline]

    def has_change_permission(self, request, obj=None):
        return False  # read-only money rows: no Save buttons

    @admin.display(description="Card fee")
    def fee(self, obj):
        return obj.fee_display

    @admin.display(description="Refunded but not recovered")
    def unrecovered(self, obj):
        cents = JournalLine.objects.filter(
            transaction__payment=obj, account__key=AccountCode.REFUNDS
        ).aggregate(total=Sum("amount_cents"))["total"]
        return money.display(cents or 0)

    @admin.display(description="The books")
    def journal(self, obj):
        rows = format_html_join(
            "",
            '<li><a href="{}">{}</a> {}</li>',
            (
                (
                    reverse("admin:books_journaltransaction_change", args=[t.pk]),
                    t.event,
                    t.idempotency_key,
                )
                for t in obj.journal_transactions.order_by("id")
            ),
        )
        return format_html("<ul>{}</ul>", rows) if rows else "Nothing posted."

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Amount")
    def amount_display(self, obj):
        return obj.amount_display

    @admin.action(description="Refund selected payments through Stripe…", permissions=["desk"])
    def refund_through_stripe(self, request, queryset):
        """Refund in full, after a confirmation page with a reason (recorded)."""
        self.check_desk_permission(request)

        def run(payment, reason):
            try:
                done = services.refund_from_desk(
                    payment=payment, staff_user=request.user, reason=reason
                )
            except (GatewayError, services.InvalidTransition, ValueError, PermissionError) as exc:
                self.message_user(request, f"Payment {payment.pk}: {exc}", messages.ERROR)
                return
            payment.refresh_from_db()
            shortfall = (
                f" {payment.refund_shortfall_credits} credit(s) were already used."
                if payment.status == PaymentStatus.REFUNDED and payment.refund_shortfall_credits
                else ""
            )
            self.message_user(
                request, f"Payment {payment.pk}: {done.outcome}{shortfall}", messages.SUCCESS
            )

        return confirm_action(
            self,
            request,
            queryset.filter(status__in=(PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)),
            title="Refund through Stripe",
            warning="These card payments will be refunded in full through Stripe: unused "
            "credits are voided and bought tracks are revoked. This cannot be undone. "
            "(Only paid payments are listed.)",
            run=run,
        )


@admin.register(StaffAction)
class StaffActionAdmin(ReadOnlyAdmin):
    """What staff did to money, and why: written by the actions, never by hand."""

    list_display = ["created_at", "staff_user", "action", "payment", "subject", "ok", "outcome"]
    list_filter = ["action", "ok"]
    search_fields = ["staff_user__email", "reason", "subject"]
    list_select_related = ["staff_user", "payment"]
    date_hierarchy = "created_at"
