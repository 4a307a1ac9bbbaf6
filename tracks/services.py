"""State changes of tracks: generation (paid up front, given back on failure),
publishing, pricing and deletion."""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from purchases import selectors as purchase_selectors
from subscriptions.selectors import commercial_rights
from subscriptions.services import GenerationCharge, charge_generation, give_back_generation
from tracks import catalog
from tracks.engine import GeneratedTrack, TrackSpec, get_engine
from tracks.models import Track, TrackStatus

logger = logging.getLogger(__name__)

# Deliveries of one generation (first try, retries and redeliveries after a worker
# died mid-render) before the track fails and its cost is given back.
MAX_ATTEMPTS = 3
# A track queued or generating for longer than this has lost its task: the periodic
# job fails it and gives its cost back (DESIGN.md section 3).
STUCK_AFTER = dt.timedelta(minutes=30)

# The allowed moves of a track's status. "generating" may repeat: a worker that died
# mid-way leaves the task to be delivered again.
TRANSITIONS: dict[str, set[str]] = {
    TrackStatus.QUEUED: {TrackStatus.GENERATING, TrackStatus.FAILED},
    TrackStatus.GENERATING: {TrackStatus.GENERATING, TrackStatus.READY, TrackStatus.FAILED},
    TrackStatus.READY: set(),
    TrackStatus.FAILED: set(),
}


class InvalidTransition(Exception):
    pass


def _now() -> dt.datetime:
    return timezone.now()


def set_status(track: Track, new_status: str, *, extra_fields: tuple[str, ...] = ()) -> None:
    """Move a locked track to a new status, or raise InvalidTransition."""
    if new_status not in TRANSITIONS[track.status]:
        raise InvalidTransition(f"Track {track.pk}: {track.status} -> {new_status}")
    track.status = new_status
    track.save(update_fields=["status", *extra_fields])


def charge_of(track: Track) -> GenerationCharge:
    return GenerationCharge(
        track.charge_kind,
        allowance_use_id=track.allowance_use_id,
        ledger_entry_id=track.ledger_entry_id,
    )


# --- Generation ----------------------------------------------------------------------


def request_generation(
    *, creator, title: str, prompt: str, genre: str, mood: str, duration_seconds: int
) -> Track:
    """Take the cost (allowance first, then 1 credit) and queue the track, atomically.

    Raises credits.exceptions.InsufficientCredits, leaving nothing behind, when
    neither the allowance nor credits can pay.
    """
    with transaction.atomic():
        track = Track.objects.create(
            creator=creator,
            title=title,
            prompt=prompt,
            genre=genre,
            mood=mood,
            duration_seconds=duration_seconds,
            seed=secrets.randbelow(2**31),
            charge_kind="pending",
        )
        charge = charge_generation(user=creator, idempotency_key=f"track:{track.pk}:generation")
        # Rights are fixed now, by the subscription that is active when the track is made.
        rights = commercial_rights(creator)
        track.charge_kind = charge.kind
        track.allowance_use_id = charge.allowance_use_id
        track.ledger_entry_id = charge.ledger_entry_id
        track.rights_plan = rights.plan if rights else ""
        track.rights_terms_version = rights.terms_version if rights else ""
        track.save(
            update_fields=[
                "charge_kind",
                "allowance_use",
                "ledger_entry",
                "rights_plan",
                "rights_terms_version",
            ]
        )

        def enqueue():
            from tracks.tasks import generate_track

            try:
                generate_track.delay(track.pk)
            except Exception:
                # The broker is unreachable: the task will never run, so fail the track
                # now (the cost goes back) instead of leaving it queued.
                logger.exception("could not queue a generation", extra={"track_id": track.pk})
                failed = fail_generation(
                    track_id=track.pk,
                    error="We could not start the generation. It was given back; please try again.",
                )
                track.status, track.error = failed.status, failed.error
                track.charge_returned_at = failed.charge_returned_at

        transaction.on_commit(enqueue)
    return track


def start_generation(*, track_id: int) -> Track | None:
    """Mark a track as generating; None when there is nothing (left) to do.

    A track already tried MAX_ATTEMPTS times (a render that keeps killing its worker
    is redelivered) is failed instead, and its cost given back.
    """
    with transaction.atomic():
        track = Track.objects.select_for_update().filter(pk=track_id).first()
        if track is None or TrackStatus.GENERATING not in TRANSITIONS[track.status]:
            return None
        if track.attempts >= MAX_ATTEMPTS:
            fail_generation(track_id=track_id, error=GENERATOR_FAILED)
            return None
        track.attempts += 1
        track.progress = 0
        set_status(track, TrackStatus.GENERATING, extra_fields=("attempts", "progress"))
    return track


def report_progress(*, track_id: int, fraction: float) -> None:
    Track.objects.filter(pk=track_id, status=TrackStatus.GENERATING).update(
        progress=max(0, min(99, int(fraction * 100)))
    )


def spec_for(track: Track) -> TrackSpec:
    return TrackSpec(
        title=track.title,
        prompt=track.prompt,
        genre=track.genre,
        mood=track.mood,
        duration_seconds=track.duration_seconds,
        seed=track.seed,
    )


def render(track: Track, *, on_progress=None) -> GeneratedTrack:
    """Run the configured engine (slow: called by the Celery task only)."""
    return get_engine(settings.TRACKS_ENGINE).generate(spec_for(track), progress=on_progress)


def finish_generation(*, track_id: int, result: GeneratedTrack) -> Track:
    """Store the audio files and mark the track ready."""
    track = Track.objects.get(pk=track_id)
    # Files first (outside the row lock: storage may be slow); the row then points at them.
    names = {
        "audio": f"track.{result.audio_extension}",
        "preview": f"preview.{result.audio_extension}",
        "waveform": f"waveform.{result.waveform_extension}",
    }
    contents = {"audio": result.audio, "preview": result.preview, "waveform": result.waveform}
    stored = {}
    for field, name in names.items():
        stored[field] = track._meta.get_field(field).storage.save(
            track._meta.get_field(field).generate_filename(track, name),
            ContentFile(contents[field]),
        )
    with transaction.atomic():
        track = Track.objects.select_for_update().get(pk=track_id)
        if track.status != TrackStatus.GENERATING:
            return track  # failed or finished meanwhile: the files stay unreferenced
        track.audio.name, track.preview.name, track.waveform.name = (
            stored["audio"],
            stored["preview"],
            stored["waveform"],
        )
        track.engine = result.engine
        track.tempo_bpm = result.tempo_bpm
        track.key = result.key
        track.length_seconds = result.duration_seconds
        track.progress = 100
        track.generated_at = _now()
        track.error = ""
        set_status(
            track,
            TrackStatus.READY,
            extra_fields=(
                "audio",
                "preview",
                "waveform",
                "engine",
                "tempo_bpm",
                "key",
                "length_seconds",
                "progress",
                "generated_at",
                "error",
            ),
        )
    return track


GENERATOR_FAILED = "The generator failed. Your generation was given back."
STUCK = "The generation did not finish in time. It was given back; please try again."


def fail_generation(*, track_id: int, error: str) -> Track:
    """Mark the track failed and give its cost back, exactly once.

    The one failure path of a generation: the engine refusing or failing, storing
    the files, queueing the task, the attempt cap and the stuck-generations job all
    end here. The row lock and `charge_returned_at` make it safe to call any number
    of times, concurrently.
    """
    with transaction.atomic():
        track = Track.objects.select_for_update().get(pk=track_id)
        if track.status in (TrackStatus.QUEUED, TrackStatus.GENERATING):
            track.error = error[:500]
            set_status(track, TrackStatus.FAILED, extra_fields=("error",))
        if track.status == TrackStatus.FAILED and track.charge_returned_at is None:
            give_back_generation(
                charge=charge_of(track), memo=f"Generation of \u201c{track.title}\u201d failed"
            )
            track.charge_returned_at = _now()
            track.save(update_fields=["charge_returned_at"])
    return track


def fail_stuck_generations(*, now: dt.datetime | None = None) -> int:
    """Fail the tracks queued or generating for over 30 minutes; give their cost back.

    Idempotent and safe to run concurrently (fail_generation locks each track and
    gives back once). One track's error is logged and the sweep goes on. Returns how
    many tracks this run failed.
    """
    cutoff = (now or _now()) - STUCK_AFTER
    stuck = list(
        Track.objects.filter(
            status__in=(TrackStatus.QUEUED, TrackStatus.GENERATING), created_at__lte=cutoff
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    failed = 0
    for track_id in stuck:
        try:
            with transaction.atomic():
                # Skip a track another sweep holds; it is being failed there.
                track = (
                    Track.objects.select_for_update(skip_locked=True)
                    .filter(pk=track_id, status__in=(TrackStatus.QUEUED, TrackStatus.GENERATING))
                    .first()
                )
                if track is None:
                    continue
                fail_generation(track_id=track_id, error=STUCK)
            failed += 1
        except Exception:
            logger.exception("could not fail a stuck generation", extra={"track_id": track_id})
    return failed


# --- The creator's studio ------------------------------------------------------------


def publish(*, track: Track, published: bool) -> Track:
    if published and track.status != TrackStatus.READY:
        raise InvalidTransition("Only a ready track can be published.")
    with transaction.atomic():
        track.is_published = published
        track.published_at = _now() if published else None
        track.save(update_fields=["is_published", "published_at"])
        catalog.changed(track.creator.slug)
    return track


def set_price(*, track: Track, price_credits: int, for_sale: bool) -> Track:
    if price_credits < 1:
        raise ValueError("The price is a whole number of credits, at least 1.")
    with transaction.atomic():
        track.price_credits = price_credits
        track.for_sale = for_sale
        track.save(update_fields=["price_credits", "for_sale"])
        catalog.changed(track.creator.slug)
    return track


def has_buyers(track: Track) -> bool:
    """Whether a fan owns the track or is paying for it."""
    return purchase_selectors.track_has_buyers(track)


def delete_track(*, track: Track) -> None:
    """Delete a track nobody has bought, with its files.

    A track with any purchase (even one refunded or abandoned) stays: it is part of
    the money history. Its artist can unpublish it; buyers keep it either way.
    """
    if has_buyers(track):
        raise InvalidTransition("Fans have bought this track; unpublish it instead.")
    if purchase_selectors.track_has_purchases(track):
        raise InvalidTransition("This track has purchase records; unpublish it instead.")
    if track.status in (TrackStatus.QUEUED, TrackStatus.GENERATING):
        raise InvalidTransition("Wait until the track has finished generating.")
    files = [f for f in (track.audio, track.preview, track.waveform) if f]
    with transaction.atomic():
        track.delete()
        # A new version in the same transaction: a page drawn before the commit sees
        # neither the deletion nor the new version, one drawn after it sees both.
        catalog.changed(track.creator.slug)
    for file in files:
        file.storage.delete(file.name)
