"""The site's URLs plus one for bench/tracks.py: the cheapest possible signed-in view."""

from django.http import HttpResponse
from django.urls import include, path


def signed_in_floor(request):
    """Read only request.user (its session and user rows): what any signed-in page pays."""
    return HttpResponse(request.user.display_name, content_type="text/plain")


urlpatterns = [
    path("bench/signed-in-floor", signed_in_floor),
    path("", include("soundstudio.urls")),
]
