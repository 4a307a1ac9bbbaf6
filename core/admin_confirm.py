"""Admin list actions that change money ask first: a confirmation page with a reason.

Used like Django's own "delete selected": the action renders the page; its form posts
the same action back with `post=yes` and the reason, and only then does it run.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

# The reconciliation desk's permission. The desk's actions (settle, replay, refund,
# cancel) need it wherever they are offered, in a model's list too: being allowed to
# look at payments or events is not being allowed to move money.
DESK_PERMISSION = "payments.use_reconciliation_desk"


class DeskActionsMixin:
    """For a ModelAdmin whose list actions are desk actions: declare them with
    `@admin.action(permissions=["desk"])` and call `check_desk_permission` first."""

    def has_desk_permission(self, request) -> bool:
        return request.user.has_perm(DESK_PERMISSION)

    def check_desk_permission(self, request) -> None:
        if not self.has_desk_permission(request):
            raise PermissionDenied("This action needs the reconciliation desk's permission.")


def confirm_action(
    modeladmin: admin.ModelAdmin,
    request,
    queryset,
    *,
    title: str,
    warning: str,
    run: Callable[[object, str], None],
):
    """Render the confirmation page, or (confirmed with a reason) run `run(obj, reason)`
    for each selected object and return to the list."""
    reason = (request.POST.get("reason") or "").strip()
    error = ""
    if request.POST.get("post") == "yes":
        if reason:
            for obj in queryset:
                run(obj, reason)
            return None
        error = "Give a reason: it is recorded with the action and your name."
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "warning": warning,
        "objects": list(queryset),
        "queryset": queryset,
        "opts": modeladmin.model._meta,
        "action_name": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "reason": reason,
        "error": error,
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)
