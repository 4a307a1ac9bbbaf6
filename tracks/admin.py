from django.contrib import admin, messages

from tracks import services
from tracks.models import Track


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    """Tracks are made and priced by their artists; staff read them and may unpublish."""

    list_display = [
        "id",
        "title",
        "creator",
        "status",
        "is_published",
        "for_sale",
        "price_credits",
        "charge_kind",
        "created_at",
    ]
    list_filter = ["status", "is_published", "for_sale", "charge_kind", "created_at"]
    search_fields = ["title", "creator__email", "creator__display_name"]
    list_select_related = ["creator"]
    date_hierarchy = "created_at"
    actions = ["unpublish"]
    readonly_fields = [f.name for f in Track._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # artists delete from the studio, which keeps tracks that have buyers

    @admin.action(description="Unpublish selected tracks (buyers keep them)")
    def unpublish(self, request, queryset):
        count = 0
        for track in queryset.filter(is_published=True).select_related("creator"):
            services.publish(track=track, published=False)
            count += 1
        self.message_user(request, f"Unpublished {count} track(s).", messages.SUCCESS)
