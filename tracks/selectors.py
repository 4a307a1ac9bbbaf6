from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, QuerySet

from purchases import selectors as purchase_selectors
from subscriptions.selectors import commercial_rights
from tracks.models import Track, TrackStatus

LIST_FIELDS = (
    "id",
    "title",
    "genre",
    "mood",
    "duration_seconds",
    "length_seconds",
    "price_credits",
    "for_sale",
    "published_at",
    "creator_id",
    "status",
    "waveform",
)


def studio_tracks(user) -> QuerySet[Track]:
    return Track.objects.filter(creator=user).order_by("-created_at")


def published_tracks(artist) -> QuerySet[Track]:
    """An artist's published tracks, newest first (one query per page)."""
    return (
        Track.objects.filter(creator=artist, is_published=True, status=TrackStatus.READY)
        .only(*LIST_FIELDS)
        .order_by("-published_at", "-id")
    )


def visible_track(user, track_id: int) -> Track | None:
    """A track the user may see: published, their own, or one they bought (buyers keep
    a track its artist unpublished)."""
    track = Track.objects.select_related("creator").filter(pk=track_id).first()
    if track is None:
        return None
    if track.is_published or (user.is_authenticated and track.creator_id == user.pk):
        return track
    if purchase_selectors.in_collection(user, track):
        return track
    return None


def can_download_full(user, track: Track) -> bool:
    """The creator, and fans with a completed purchase (not refunded, not disputed)."""
    if not user.is_authenticated:
        return False
    return track.creator_id == user.pk or purchase_selectors.owns(user, track)


def rights_status(track: Track) -> str:
    """DESIGN.md: rights hold while the creator's subscription is active; a track made
    without one never gains them."""
    if not track.had_rights_when_made:
        return "none"
    return "active" if commercial_rights(track.creator) is not None else "lapsed"


def new_artists(limit: int = 8):
    """The newest artists with something to hear: a fan who never published is not
    listed (their page would be empty)."""
    published = Track.objects.filter(
        creator=OuterRef("pk"), is_published=True, status=TrackStatus.READY
    )
    return (
        get_user_model()
        .objects.filter(Exists(published), is_active=True, is_staff=False)
        .order_by("-date_joined")[:limit]
    )
