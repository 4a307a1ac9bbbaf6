from django.urls import path

from tracks import views

urlpatterns = [
    path("api/tracks/generate", views.generate_api, name="api_generate_track"),
    path("api/tracks/<int:track_id>", views.track_api, name="api_track"),
    path("studio/", views.studio, name="studio"),
    path("studio/tracks/<int:track_id>/publish", views.publish, name="track_publish"),
    path("studio/tracks/<int:track_id>/price", views.price, name="track_price"),
    path("studio/tracks/<int:track_id>/delete", views.delete, name="track_delete"),
    path("artists/<slug:slug>/", views.artist_page, name="artist_detail"),
    path("tracks/<int:track_id>/", views.track_detail, name="track_detail"),
    path("tracks/<int:track_id>/preview", views.preview, name="track_preview"),
    path("tracks/<int:track_id>/waveform.svg", views.waveform, name="track_waveform"),
    path("tracks/<int:track_id>/download", views.download, name="track_download"),
]
