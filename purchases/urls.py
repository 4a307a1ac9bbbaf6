from django.urls import path

from purchases import views

urlpatterns = [
    path("api/tracks/<int:track_id>/purchase", views.purchase_api, name="api_purchase_track"),
    path("api/purchases", views.purchases_api, name="api_purchases"),
    path("api/purchases/<int:purchase_id>", views.purchase_detail_api, name="api_purchase"),
    path("collection/", views.collection, name="collection"),
    path("purchases/<int:purchase_id>/receipt/", views.receipt, name="purchase_receipt"),
    path("studio/sales/", views.studio_sales, name="studio_sales"),
]
