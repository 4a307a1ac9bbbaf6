from django.urls import path

from notices import views

urlpatterns = [
    path("notices/unsubscribe/<str:token>/", views.unsubscribe, name="notices_unsubscribe"),
]
