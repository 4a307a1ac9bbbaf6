"""Admin list actions that change money ask first: a confirmation page with a reason.

Used like Django's own "delete selected": the action renders the page; its form posts
the same action back with `post=yes` and the reason, and only then does it run.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.contrib.admin import helpers
from django.template.response import TemplateResponse


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
