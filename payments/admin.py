from django.contrib import admin, messages

from payments import services
from payments.gateway import GatewayError
from payments.models import Payment, PaymentStatus


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "user",
        "purpose",
        "package",
        "amount_display",
        "status",
        "stripe_payment_intent_id",
        "refunded_cents",
        "refund_shortfall_credits",
    ]
    list_filter = ["status", "purpose", "package", "created_at"]
    search_fields = ["stripe_payment_intent_id", "user__email"]
    list_select_related = ["user", "package"]
    date_hierarchy = "created_at"
    actions = ["refund_through_stripe"]
    readonly_fields = [f.name for f in Payment._meta.fields]
    exclude = ["client_secret"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Amount")
    def amount_display(self, obj):
        return obj.amount_display

    @admin.action(description="Refund selected payments through Stripe")
    def refund_through_stripe(self, request, queryset):
        for payment in queryset:
            if payment.status != PaymentStatus.SUCCEEDED:
                self.message_user(
                    request, f"Payment {payment.pk} is {payment.status}: skipped.", messages.WARNING
                )
                continue
            try:
                services.request_refund(payment=payment)
            except (GatewayError, services.InvalidTransition) as exc:
                self.message_user(request, f"Payment {payment.pk}: {exc}", messages.ERROR)
                continue
            payment.refresh_from_db()
            self.message_user(
                request,
                f"Payment {payment.pk} refund requested"
                + (
                    f"; {payment.refund_shortfall_credits} credit(s) were already used."
                    if payment.status == PaymentStatus.REFUNDED
                    else "."
                ),
                messages.SUCCESS,
            )
