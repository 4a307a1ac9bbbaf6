from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db import transaction
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from accounts import services
from accounts.forms import SLUG_TAKEN, clean_artist_slug
from accounts.models import PreviousSlug, User
from accounts.selectors import slug_taken
from books.selectors import artist_payable
from credits.selectors import explain_balance
from payments.models import Payment
from purchases.selectors import fan_purchases, sales
from subscriptions.selectors import allowance_remaining, current_subscription


class AccountCreationForm(AdminUserCreationForm):
    """The admin's add form; saving goes through accounts.services.create_account."""

    class Meta:
        model = User
        fields = ["email", "display_name", "slug"]
        field_classes = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        self.fields["slug"].help_text = "Leave empty to derive it from the display name."

    def clean_email(self) -> str:
        return User.objects.normalize_email(self.cleaned_data["email"])

    def clean_slug(self) -> str:
        slug = (self.cleaned_data["slug"] or "").strip().lower()
        if not slug:
            return slug  # derived by create_account
        if slug_taken(slug):  # someone's address now, or an old one that redirects
            raise forms.ValidationError(SLUG_TAKEN)
        return clean_artist_slug(slug, User(slug=slug))  # the format check


class UserAdminChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User

    def clean_slug(self) -> str:
        return clean_artist_slug(self.cleaned_data["slug"], User.objects.get(pk=self.instance.pk))


class PreviousSlugInline(admin.TabularInline):
    """Old addresses that redirect to this artist; delete one to free it for others."""

    model = PreviousSlug
    verbose_name = "old artist address (redirects here)"
    verbose_name_plural = "Old artist addresses (redirect here)"
    fields = ["slug", "created_at"]
    readonly_fields = fields
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    add_form = AccountCreationForm
    form = UserAdminChangeForm
    inlines = [PreviousSlugInline]
    ordering = ["email"]
    list_display = ["email", "display_name", "slug", "is_staff", "date_joined"]
    search_fields = ["email", "display_name", "slug"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Money: explain the balance", {"fields": ["money"]}),
        ("Artist profile", {"fields": ["display_name", "slug"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    readonly_fields = ["money"]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "display_name", "slug", "password1", "password2"],
            },
        ),
    ]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # a new account has no old addresses

    def save_model(self, request, obj, form, change):
        if not change:
            services.create_account(obj)  # a slug when left empty, and the Free gift
            return None
        if "slug" not in form.changed_data:
            return super().save_model(request, obj, form, change)
        with transaction.atomic():
            old_slug = form.initial["slug"]
            super().save_model(request, obj, form, change)
            services.slug_changed(user=obj, old_slug=old_slug)
        from tracks import catalog

        catalog.changed(old_slug, obj.slug)

    @admin.display(description="Credits, lots, entries and payments")
    def money(self, obj):
        if obj is None or obj.pk is None:
            return ""
        payments = list(
            Payment.objects.filter(user_id=obj.pk).select_related("package").order_by("-created_at")
        )
        html = render_to_string(
            "admin/accounts/user_money.html",
            {
                "x": explain_balance(obj),
                "allowance": allowance_remaining(obj),
                "subscription": current_subscription(obj),
                "payable": artist_payable(obj),
                "payments": payments,
                "payments_by_lot": {p.lot_id: p for p in payments if p.lot_id},
                "purchases": list(fan_purchases(obj).select_related("track", "payment")[:100]),
                "sales": list(sales(obj)[:100]),
            },
        )
        # Admin turns newlines of a read-only value into <br>: keep the tables whole.
        return mark_safe(html.replace("\n", " "))  # noqa: S308 - rendered by our template
