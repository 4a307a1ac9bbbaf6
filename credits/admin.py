from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join

from books import money
from core.admin_base import ReadOnlyAdmin, ReadOnlyInline
from credits import services
from credits.exceptions import IdempotencyConflict, InsufficientCredits
from credits.forms import AdjustCreditsForm
from credits.models import CreditLot, CreditPackage, LedgerEntry, LedgerEntryLot, Wallet


@admin.register(CreditPackage)
class CreditPackageAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "credits",
        "price_cents",
        "expires_after_days",
        "is_purchasable",
    ]
    list_editable = ["is_purchasable"]
    ordering = ["sort_order"]


@admin.register(CreditLot)
class CreditLotAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "amount",
        "remaining",
        "source",
        "cost_display",
        "cost_left_display",
        "expires_at",
        "created_at",
    ]
    list_filter = ["source", ("expires_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__email", "grant_key"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"

    @admin.display(description="Cost basis")
    def cost_display(self, obj):
        return money.display(obj.cost_cents)

    @admin.display(description="Unreleased cost")
    def cost_left_display(self, obj):
        return money.display(obj.cost_left_cents)


class LedgerEntryLotInline(ReadOnlyInline):
    model = LedgerEntryLot
    fields = ["lot", "amount", "cost_cents"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "user",
        "kind",
        "amount",
        "balance_after",
        "cause",
        "staff_user",
        "idempotency_key",
    ]
    list_filter = ["kind", "cause"]
    search_fields = ["user__email", "idempotency_key", "cause_ref"]
    list_select_related = ["user", "staff_user"]
    date_hierarchy = "created_at"
    inlines = [LedgerEntryLotInline]
    readonly_fields = ["tied_to"]

    @admin.display(description="Tied to")
    def tied_to(self, obj):
        """One click to the payments, journal transactions and lots of this entry."""
        from payments.models import Payment

        links = []
        lot_ids = list(obj.lot_links.values_list("lot_id", "lot__origin_lot_id"))
        for lot_id, _ in lot_ids:
            links.append(
                (reverse("admin:credits_creditlot_change", args=[lot_id]), f"lot {lot_id}")
            )
        paid_by = Payment.objects.filter(
            lot_id__in=[origin or lot for lot, origin in lot_ids]
        ).values_list("pk", flat=True)
        for pk in paid_by:
            links.append((reverse("admin:payments_payment_change", args=[pk]), f"payment {pk}"))
        for t in obj.journal_transactions.all():
            links.append(
                (reverse("admin:books_journaltransaction_change", args=[t.pk]), f"books: {t.event}")
            )
        if obj.reverses_id:
            links.append(
                (
                    reverse("admin:credits_ledgerentry_change", args=[obj.reverses_id]),
                    "the spend it gives back",
                )
            )
        return format_html_join(" · ", '<a href="{}">{}</a>', links) or "—"


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["user", "balance", "updated_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    change_list_template = "admin/credits/wallet/change_list.html"

    def get_urls(self):
        adjust = path(
            "adjust/",
            self.admin_site.admin_view(self.adjust_view),
            name="credits_wallet_adjust",
        )
        return [adjust, *super().get_urls()]

    def adjust_view(self, request):
        if not request.user.has_perm("credits.adjust_credits"):
            raise PermissionDenied("You may not adjust credits.")
        form = AdjustCreditsForm(request.POST or None, initial={"user": request.GET.get("user")})
        # Search users by e-mail as you type, instead of one <option> per account.
        widget = AutocompleteSelect(Wallet._meta.get_field("user"), self.admin_site)
        widget.choices = form.fields["user"].choices
        form.fields["user"].widget = widget
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                entry = services.adjust(
                    user=data["user"],
                    amount=data["amount"],
                    staff_user=request.user,
                    reason=data["reason"],
                    idempotency_key=f"adjust:{data['request_id']}",
                )
            except InsufficientCredits as exc:
                form.add_error("amount", f"Cannot take that many: {exc}")
            except IdempotencyConflict:
                form.add_error(
                    None,
                    "This form was already used for a different adjustment (another user "
                    "or amount). Nothing was changed: open the form again to make a new one.",
                )
            else:
                messages.success(
                    request,
                    f"Adjusted {data['user'].email} by {entry.amount:+d}; "
                    f"balance now {entry.balance_after}.",
                )
                return redirect(reverse("admin:credits_wallet_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Adjust credits",
            "form": form,
            "media": self.media + form.media,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/credits/adjust.html", context)
