from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from payments.gateway import GatewayError
from purchases import services
from purchases.forms import RefundForm
from purchases.models import Purchase, PurchaseStatus
from purchases.receipts import dollars


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    """Purchases are made by fans and moved by Stripe; staff only refund them."""

    list_display = [
        "id",
        "created_at",
        "fan",
        "track",
        "status",
        "payment_method",
        "price_credits",
        "amount",
        "artist_earnings",
        "flag",
        "intent_id",
    ]
    list_filter = ["status", "payment_method", "flag", "created_at"]
    search_fields = ["fan__email", "track__title", "payment__stripe_payment_intent_id"]
    list_select_related = ["fan", "track", "payment"]
    date_hierarchy = "created_at"
    actions = ["refund"]
    readonly_fields = [f.name for f in Purchase._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_refund_permission(self, request):
        return request.user.has_perm("purchases.refund_purchase")

    @admin.display(description="Card price")
    def amount(self, obj):
        return dollars(obj.amount_cents)

    @admin.display(description="Artist earns")
    def artist_earnings(self, obj):
        return dollars(obj.artist_earnings_cents)

    @admin.display(description="PaymentIntent", ordering="payment__stripe_payment_intent_id")
    def intent_id(self, obj):
        return obj.payment.stripe_payment_intent_id if obj.payment_id else ""

    @admin.action(description="Refund selected purchases\u2026", permissions=["refund"])
    def refund(self, request, queryset):
        """Ask for a reason on a confirmation page, then refund each purchase in full."""
        if not self.has_refund_permission(request):
            raise PermissionDenied
        form = RefundForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            for purchase in queryset:
                self._refund_one(request, purchase, form.cleaned_data["reason"])
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Refund purchases",
            "opts": self.model._meta,
            "form": form,
            "purchases": queryset.select_related("fan", "track"),
            "refundable": PurchaseStatus.COMPLETED,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/purchases/refund_confirm.html", context)

    def _refund_one(self, request, purchase, reason):
        try:
            purchase = services.refund_purchase(
                purchase=purchase, staff_user=request.user, reason=reason
            )
        except (services.InvalidTransition, GatewayError, ValueError) as exc:
            self.message_user(request, f"Purchase {purchase.pk}: {exc}", messages.ERROR)
            return
        if purchase.status == PurchaseStatus.REFUNDED:
            self.message_user(request, f"Purchase {purchase.pk} refunded.", messages.SUCCESS)
        else:
            self.message_user(
                request,
                f"Purchase {purchase.pk}: refund requested; Stripe will confirm it.",
                messages.INFO,
            )
