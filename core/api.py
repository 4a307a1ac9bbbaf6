"""Helpers for the JSON endpoints: one error shape, session auth like the pages."""

from functools import wraps

from django.http import JsonResponse


def api_error(code: str, message: str, status: int = 400, **extra) -> JsonResponse:
    return JsonResponse({"error": code, "message": message, **extra}, status=status)


def api_login_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return api_error("not_authenticated", "Log in first.", status=401)
        return view(request, *args, **kwargs)

    return wrapper
