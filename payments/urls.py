from django.urls import path

from payments import views

urlpatterns = [
    path(
        "api/credits/packages/<slug:slug>/purchase",
        views.purchase_package_api,
        name="api_purchase_package",
    ),
    path("api/payments/<str:intent_id>", views.payment_status_api, name="api_payment_status"),
    path("payments/test-checkout/<str:intent_id>/", views.test_checkout, name="test_checkout"),
    path(
        "payments/test-checkout/<str:intent_id>/cancel",
        views.test_checkout_cancel,
        name="test_checkout_cancel",
    ),
]
