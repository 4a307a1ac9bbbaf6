from django.contrib import admin
from django.urls import include, path

from accounts.views import throttled_login
from books import views as books_views
from core import views as core_views
from payments import desk_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("ping", core_views.ping, name="ping"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("accounts/", include("accounts.urls")),
    path("", include("tracks.urls")),
    path("", include("purchases.urls")),
    path("", include("credits.urls")),
    path("", include("payments.urls")),
    path("", include("webhooks.urls")),
    path("", include("subscriptions.urls")),
    path("", include("notices.urls")),
    # The admin desk (DESIGN.md, "The admin desk"), behind the admin's own login.
    path(
        "admin/reconciliation/",
        admin.site.admin_view(desk_views.reconciliation_view),
        name="admin_reconciliation",
    ),
    path(
        "admin/reconciliation/export.csv",
        admin.site.admin_view(desk_views.reconciliation_csv),
        name="admin_reconciliation_csv",
    ),
    path(
        "admin/reconciliation/payments/<int:payment_id>/<slug:action>/",
        admin.site.admin_view(desk_views.action_view),
        name="admin_reconciliation_action",
    ),
    path(
        "admin/revenue/",
        admin.site.admin_view(books_views.revenue_view),
        name="admin_revenue",
    ),
    # The admin's log-in, throttled like ours (accounts.throttle).
    path("admin/login/", throttled_login(admin.site.login)),
    path("admin/", admin.site.urls),
]
