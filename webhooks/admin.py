from django.contrib import admin, messages

from webhooks import services
from webhooks.models import EventStatus, WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "type", "stripe_event_id", "status", "attempts", "processed_at"]
    list_filter = ["status", "type"]
    search_fields = ["stripe_event_id", "payload__data__object__id", "last_error"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]
    date_hierarchy = "received_at"
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Replay selected events now")
    def replay(self, request, queryset):
        for event in queryset:
            stored = services.replay(event=event)
            level = messages.ERROR if stored.status == EventStatus.FAILED else messages.SUCCESS
            self.message_user(request, f"{stored.stripe_event_id}: {stored.status}", level)
