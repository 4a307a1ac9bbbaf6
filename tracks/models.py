"""Generated tracks: their audio, how they were paid for, rights and publishing."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse


class TrackStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    GENERATING = "generating", "Generating"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


def _track_path(track: "Track", filename: str) -> str:
    return f"tracks/{track.creator_id}/{track.pk}/{filename}"


class Track(models.Model):
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tracks"
    )
    title = models.CharField(max_length=120)
    prompt = models.TextField(max_length=1000)
    genre = models.CharField(max_length=32)
    mood = models.CharField(max_length=32)
    duration_seconds = models.PositiveSmallIntegerField(help_text="Requested length.")
    seed = models.BigIntegerField()

    status = models.CharField(
        max_length=16, choices=TrackStatus.choices, default=TrackStatus.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    # What paid for it (DESIGN.md: allowance first, then 1 credit), and its return.
    charge_kind = models.CharField(max_length=16)
    allowance_use = models.OneToOneField(
        "subscriptions.AllowanceUse", null=True, blank=True, on_delete=models.PROTECT
    )
    ledger_entry = models.OneToOneField(
        "credits.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    charge_returned_at = models.DateTimeField(null=True, blank=True)

    # Commercial rights, fixed when the track is made.
    rights_plan = models.CharField(max_length=32, blank=True)
    rights_terms_version = models.CharField(max_length=32, blank=True)

    engine = models.CharField(max_length=64, blank=True)
    tempo_bpm = models.PositiveSmallIntegerField(null=True, blank=True)
    key = models.CharField(max_length=16, blank=True)
    length_seconds = models.FloatField(null=True, blank=True, help_text="Actual length.")
    audio = models.FileField(upload_to=_track_path, blank=True)
    preview = models.FileField(upload_to=_track_path, blank=True)
    waveform = models.FileField(upload_to=_track_path, blank=True)

    is_published = models.BooleanField(default=False)
    published_at = models.DateTimeField(null=True, blank=True)
    for_sale = models.BooleanField(default=True)
    price_credits = models.PositiveIntegerField(default=1)

    created_at = models.DateTimeField(auto_now_add=True)
    generated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(price_credits__gte=1), name="tracks_price_positive"),
            models.CheckConstraint(
                condition=~Q(is_published=True) | Q(status="ready"),
                name="tracks_only_ready_tracks_are_published",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="tracks_progress_le_100"),
        ]
        indexes = [
            models.Index(
                fields=["creator", "-published_at"],
                name="tracks_published_by_artist",
                condition=Q(is_published=True),
            )
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("track_detail", kwargs={"track_id": self.pk})

    @property
    def had_rights_when_made(self) -> bool:
        return bool(self.rights_plan)

    @property
    def length_display(self) -> str:
        seconds = round(self.length_seconds or self.duration_seconds)
        return f"{seconds // 60}:{seconds % 60:02d}"


class ArtistPage(models.Model):
    """An artist page's version (tracks.catalog): every change to what the page shows
    gives it a new one, from a sequence, in the change's own transaction. Keyed by slug,
    the page's address, so a slug that is nobody's yet has none."""

    slug = models.CharField(max_length=60, primary_key=True)
    version = models.BigIntegerField()

    class Meta:
        db_table = "tracks_artist_page"

    def __str__(self) -> str:
        return f"{self.slug} v{self.version}"
