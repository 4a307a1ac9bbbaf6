from django.contrib import admin
from django.db.models import Count, Q

from subscriptions.models import AllowancePeriod, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "plan",
        "status",
        "current_period_end",
        "cancel_at_period_end",
        "stripe_subscription_id",
        "stripe_customer_id",
    ]
    list_filter = ["status", "cancel_at_period_end", "plan"]
    search_fields = ["user__email", "stripe_subscription_id", "stripe_customer_id"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in Subscription._meta.fields]

    def has_add_permission(self, request):
        return False  # state comes from Stripe only

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AllowancePeriod)
class AllowancePeriodAdmin(admin.ModelAdmin):
    list_display = ["user", "month", "used", "limit", "opened_by", "returned"]
    list_filter = ["month", "opened_by"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in AllowancePeriod._meta.fields]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(returned_count=Count("uses", filter=Q(uses__returned_at__isnull=False)))
        )

    @admin.display(description="Given back")
    def returned(self, obj):
        return obj.returned_count

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
