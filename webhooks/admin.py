from django.contrib import admin, messages
from django.utils import timezone

from core.admin_confirm import DeskActionsMixin, confirm_action
from payments.models import StaffAction
from webhooks import services
from webhooks.models import EventStatus, WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(DeskActionsMixin, admin.ModelAdmin):
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

    @admin.action(description="Replay selected events now…", permissions=["desk"])
    def replay(self, request, queryset):
        """Apply the events again, after a confirmation page with a reason (recorded)."""
        self.check_desk_permission(request)

        def run(event, reason):
            stored = services.replay(event=event)
            failed = stored.status == EventStatus.FAILED
            StaffAction.objects.create(
                staff_user=request.user,
                action="replay",
                subject=f"event {stored.stripe_event_id}",
                reason=reason,
                outcome=f"{stored.status}{': ' + stored.last_error if failed else ''}"[:500],
                ok=not failed,
                created_at=timezone.now(),
            )
            level = messages.ERROR if failed else messages.SUCCESS
            self.message_user(request, f"{stored.stripe_event_id}: {stored.status}", level)

        return confirm_action(
            self,
            request,
            queryset,
            title="Replay events",
            warning="These Stripe events will be applied again now. Handlers are idempotent: "
            "an event already applied changes nothing.",
            run=run,
        )
