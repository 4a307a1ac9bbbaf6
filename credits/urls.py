from django.urls import path

from credits import views

urlpatterns = [
    path("credits/", views.credits_page, name="credits"),
    path("api/credits/balance", views.balance_api, name="api_credits_balance"),
]
