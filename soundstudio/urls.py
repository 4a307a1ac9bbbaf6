from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("ping", core_views.ping, name="ping"),
    path("accounts/", include("accounts.urls")),
    path("artists/<slug:slug>/", account_views.artist_detail, name="artist_detail"),
    path("", include("credits.urls")),
    path("", include("payments.urls")),
    path("", include("webhooks.urls")),
    path("", include("subscriptions.urls")),
    path("admin/", admin.site.urls),
]
