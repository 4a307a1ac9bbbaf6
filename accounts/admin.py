from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "display_name", "slug", "is_staff", "date_joined"]
    search_fields = ["email", "display_name", "slug"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Artist profile", {"fields": ["display_name", "slug"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "display_name", "slug", "password1", "password2"],
            },
        ),
    ]
