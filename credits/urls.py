from django.urls import path

from credits import views

urlpatterns = [
    path("credits/", views.credits_page, name="credits"),
    path("api/credits/balance", views.balance_api, name="api_credits_balance"),
    path("api/credits/history", views.history_api, name="api_credits_history"),
    path("api/credits/stats", views.stats_api, name="api_credits_stats"),
    path("api/credits/costs", views.costs_api, name="api_credits_costs"),
]
