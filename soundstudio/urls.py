from django.contrib import admin
from django.urls import include, path

from core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("ping", core_views.ping, name="ping"),
    path("accounts/", include("accounts.urls")),
    path("", include("tracks.urls")),
    path("", include("purchases.urls")),
    path("", include("credits.urls")),
    path("", include("payments.urls")),
    path("", include("webhooks.urls")),
    path("", include("subscriptions.urls")),
    path("admin/", admin.site.urls),
]
