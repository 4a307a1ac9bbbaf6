from django.contrib import admin

from core.admin_base import ReadOnlyAdmin
from notices.models import Notice


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "user", "key", "sent_at", "skipped")
    list_filter = ("kind",)
    search_fields = ("user__email", "key")
    list_select_related = ("user",)
    raw_id_fields = ("user", "lot", "ledger_entry", "payment", "subscription")
