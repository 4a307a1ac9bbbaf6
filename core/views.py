from functools import cache

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.health import check_database, check_redis
from tracks.selectors import new_artists


@require_GET
def home(request):
    return render(request, "core/home.html", {"artists": new_artists()})


@never_cache
@require_GET
def healthz(request):
    checks = {"database": check_database(), "redis": check_redis()}
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)


@require_GET
def ping(request):
    """Liveness without touching any backing service (also the benchmarks' baseline)."""
    return HttpResponse("ok", content_type="text/plain")


@cache
def _favicon() -> bytes:
    return (settings.BASE_DIR / "static" / "favicon.ico").read_bytes()


@require_GET
def favicon(request):
    """/favicon.ico, which browsers ask for on every page (base.html links the SVG)."""
    response = HttpResponse(_favicon(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def csrf_failure(request, reason=""):
    """JSON endpoints answer a CSRF failure in their own error shape; pages as Django does."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": "csrf_failed", "message": "Reload the page and try again."}, status=403
        )
    from django.views.csrf import csrf_failure as default_csrf_failure

    return default_csrf_failure(request, reason=reason)
