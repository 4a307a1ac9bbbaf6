"""Shared admin building blocks."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money and ledger rows are written by their services only: never added, edited or
    deleted by hand, not even by superusers (and no Save buttons)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows shown beside their parent, as written by their services: every field
    read-only, nothing added, edited or deleted here. Subclasses set `model` and
    `fields`."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
