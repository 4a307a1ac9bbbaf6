"""Hardening (issue 12): a generation's cost is never kept for a track that failed.

Every way a generation can end badly (the engine, storing the files, queueing the
task, a worker that keeps dying, a task that never ran) goes through one failure
path that gives the cost back exactly once.
"""

import datetime as dt

import pytest
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.core.files.storage import FileSystemStorage
from django.utils import timezone
from kombu.exceptions import OperationalError

from credits.models import EntryKind, LedgerEntry
from credits.selectors import balance
from subscriptions import selectors as sub_selectors
from subscriptions.models import Subscription
from tests.factories import UserFactory
from tests.threads import run_threads
from tracks import services, tasks
from tracks.models import Track, TrackStatus
from tracks.tasks import generate_track


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def request(user, title="Song") -> Track:
    return services.request_generation(
        creator=user, title=title, prompt="p", genre="pop", mood="happy", duration_seconds=2
    )


def subscribe(user):
    Subscription.objects.create(
        user=user,
        stripe_subscription_id=f"sub_{user.pk}",
        status="active",
        terms_version="2026-11",
        stripe_version=1,
    )


def refunds(user):
    return LedgerEntry.objects.filter(user=user, kind=EntryKind.REFUND)


def backdate(track: Track, *, minutes: int) -> None:
    Track.objects.filter(pk=track.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=minutes)
    )


@pytest.mark.django_db
def test_a_storage_error_fails_the_track_and_gives_the_credit_back(user, monkeypatch):
    track = request(user)
    assert balance(user) == 4

    def broken_save(self, name, content, max_length=None):
        raise OSError("disk full")

    monkeypatch.setattr(FileSystemStorage, "save", broken_save)
    assert generate_track.apply(args=[track.pk]).get() == "failed"

    track.refresh_from_db()
    assert track.status == TrackStatus.FAILED and track.charge_returned_at
    assert balance(user) == 5
    assert refunds(user).count() == 1


@pytest.mark.django_db
def test_a_failed_enqueue_fails_the_track_and_gives_the_credit_back(
    user, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis")

    monkeypatch.setattr(generate_track, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        track = request(user)

    assert track.status == TrackStatus.FAILED
    track.refresh_from_db()
    assert track.status == TrackStatus.FAILED and track.charge_returned_at
    assert balance(user) == 5
    assert refunds(user).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_failed_enqueue_answers_the_api_with_the_failed_status(client, monkeypatch):
    """Real commits: the callback runs when request_generation's transaction commits."""
    user = UserFactory()

    def broker_down(*args, **kwargs):
        raise OperationalError("down")

    monkeypatch.setattr(generate_track, "delay", broker_down)
    client.force_login(user)
    response = client.post(
        "/api/tracks/generate",
        data={"title": "T", "prompt": "p", "genre": "pop", "mood": "happy", "duration_seconds": 3},
        content_type="application/json",
    )
    assert response.status_code == 202
    assert response.json()["status"] == "failed"
    assert balance(user) == 5


@pytest.mark.django_db
def test_a_render_that_keeps_dying_is_failed_after_the_attempt_cap(user):
    """A worker killed mid-render (acks_late) gets the task redelivered: each delivery
    starts the track again; past the cap the track fails instead of rendering."""
    track = request(user)
    for _ in range(tasks.MAX_ATTEMPTS):
        assert services.start_generation(track_id=track.pk) is not None  # then the worker dies

    assert generate_track.apply(args=[track.pk]).get() == "skipped"

    track.refresh_from_db()
    assert track.status == TrackStatus.FAILED and track.attempts == tasks.MAX_ATTEMPTS
    assert balance(user) == 5
    generate_track.apply(args=[track.pk])  # redelivered once more
    assert balance(user) == 5 and refunds(user).count() == 1


@pytest.mark.django_db
def test_stuck_generations_are_failed_and_given_back_once(user):
    queued, generating, recent, ready = (request(user, f"T{i}") for i in range(4))
    services.start_generation(track_id=generating.pk)
    generate_track.apply(args=[ready.pk])
    for track in (queued, generating, ready):
        backdate(track, minutes=31)
    backdate(recent, minutes=29)
    assert balance(user) == 1

    assert services.fail_stuck_generations() == 2
    assert services.fail_stuck_generations() == 0  # run twice: nothing more

    statuses = dict(Track.objects.values_list("pk", "status"))
    assert statuses[queued.pk] == statuses[generating.pk] == TrackStatus.FAILED
    assert statuses[recent.pk] == TrackStatus.QUEUED
    assert statuses[ready.pk] == TrackStatus.READY
    assert balance(user) == 3
    assert refunds(user).count() == 2


@pytest.mark.django_db
def test_stuck_job_gives_the_allowance_back(user):
    subscribe(user)
    track = request(user)
    backdate(track, minutes=45)
    assert sub_selectors.allowance_remaining(user) == 4

    tasks.fail_stuck_generations.apply().get()

    assert sub_selectors.allowance_remaining(user) == 5
    assert Track.objects.get(pk=track.pk).status == TrackStatus.FAILED


@pytest.mark.django_db
def test_one_tracks_error_does_not_stop_the_stuck_sweep(user, monkeypatch):
    first, second = request(user, "A"), request(user, "B")
    backdate(first, minutes=40)
    backdate(second, minutes=35)
    real = services.fail_generation

    def fail(*, track_id, error):
        if track_id == first.pk:
            raise RuntimeError("boom")
        return real(track_id=track_id, error=error)

    monkeypatch.setattr(services, "fail_generation", fail)
    assert services.fail_stuck_generations() == 1
    assert Track.objects.get(pk=second.pk).status == TrackStatus.FAILED


@pytest.mark.django_db(transaction=True)
def test_concurrent_stuck_sweeps_give_each_cost_back_once():
    creator, subscriber = UserFactory(), UserFactory()
    subscribe(subscriber)
    tracks = [request(creator, f"C{i}") for i in range(4)]
    tracks += [request(subscriber, f"S{i}") for i in range(3)]
    for track in tracks:
        backdate(track, minutes=31)
    assert balance(creator) == 1 and sub_selectors.allowance_remaining(subscriber) == 2

    outcomes = run_threads([services.fail_stuck_generations] * 4)

    assert [exc for _, exc in outcomes] == [None] * 4
    assert sum(result for result, _ in outcomes) == len(tracks)
    assert balance(creator) == 5 and refunds(creator).count() == 4
    assert sub_selectors.allowance_remaining(subscriber) == 5
    assert balance(subscriber) == 5
    assert set(Track.objects.values_list("status", flat=True)) == {TrackStatus.FAILED}


def test_the_stuck_job_runs_every_ten_minutes():
    [entry] = [
        e
        for e in django_settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "tracks.fail_stuck_generations"
    ]
    assert entry["schedule"] == crontab(minute="*/10")
    assert tasks.fail_stuck_generations.name == "tracks.fail_stuck_generations"
