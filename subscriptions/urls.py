from django.urls import path

from subscriptions import views

urlpatterns = [
    path("subscribe/", views.subscribe, name="subscribe"),
    path(
        "subscribe/test-checkout/<str:session_id>/",
        views.test_checkout,
        name="test_subscription_checkout",
    ),
    path("account/subscription/", views.account, name="account_subscription"),
    path("account/subscription/cancel", views.cancel, name="subscription_cancel"),
    path("account/subscription/resume", views.resume, name="subscription_resume"),
]
