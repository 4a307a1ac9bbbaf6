import io
import json
import os
import threading
import time

import pytest
import soundfile
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from credits.models import EntryKind, LedgerEntry
from credits.selectors import balance
from credits.services import spend
from subscriptions import selectors as sub_selectors
from subscriptions.models import Subscription
from tests.engines import FailingEngine
from tests.factories import UserFactory
from tests.workers import celery_worker
from tracks import services
from tracks.models import Track, TrackStatus
from tracks.tasks import generate_track

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def generate(client, **overrides):
    body = {
        "title": "Night Drive",
        "prompt": "warm synths",
        "genre": "electronic",
        "mood": "calm",
        "duration_seconds": 3,
        **overrides,
    }
    return client.post(
        "/api/tracks/generate", data=json.dumps(body), content_type="application/json"
    )


def subscribe(user):
    Subscription.objects.create(
        user=user,
        stripe_subscription_id=f"sub_{user.pk}",
        status="active",
        terms_version="2026-11",
        stripe_version=1,
    )


def make_ready_track(user, **fields):
    track = services.request_generation(
        creator=user,
        title=fields.pop("title", "Song"),
        prompt="p",
        genre="pop",
        mood="happy",
        duration_seconds=2,
    )
    generate_track.apply(args=[track.pk])
    track.refresh_from_db()
    for name, value in fields.items():
        setattr(track, name, value)
    if fields:
        track.save()
    return track


def test_generate_returns_202_and_the_task_makes_real_audio(client, user):
    client.force_login(user)

    response = generate(client)

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert balance(user) == 4
    assert generate_track.apply(args=[body["track_id"]]).get() == "ready"
    status = client.get(f"/api/tracks/{body['track_id']}").json()
    assert status["status"] == "ready" and status["progress"] == 100
    audio = client.get(status["audio_url"])
    data, rate = soundfile.read(io.BytesIO(b"".join(audio.streaming_content)))
    assert abs(len(data) / rate - 3) < 0.2
    # Running the task again (a redelivery) changes nothing.
    assert generate_track.apply(args=[body["track_id"]]).get() == "skipped"
    assert balance(user) == 4


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": ""}, "title"),
        ({"prompt": "   "}, "prompt"),
        ({"genre": "polka-metal"}, "genre"),
        ({"mood": "hangry"}, "mood"),
        ({"duration_seconds": 181}, "duration_seconds"),
        ({"duration_seconds": 0}, "duration_seconds"),
        ({"duration_seconds": "long"}, "duration_seconds"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_costs_nothing(client, user, overrides, field):
    client.force_login(user)

    response = generate(client, **overrides)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert field in response.json()["fields"]
    assert balance(user) == 5 and not Track.objects.exists()


def test_no_credits_is_402_with_a_link_to_buy(client, user):
    spend(user=user, amount=5, reason="test", idempotency_key="drain")
    client.force_login(user)

    response = generate(client)

    assert response.status_code == 402
    assert response.json()["error"] == "insufficient_credits"
    assert response.json()["buy_url"] == "/credits/"
    assert not Track.objects.exists()


def test_failing_engine_gives_the_credit_back_exactly_once_despite_retries(client, user, settings):
    settings.TRACKS_ENGINE = "tests.engines.FailingEngine"
    FailingEngine.calls = 0
    client.force_login(user)
    track_id = generate(client).json()["track_id"]
    assert balance(user) == 4

    assert generate_track.apply(args=[track_id]).get() == "failed"

    assert FailingEngine.calls == 3  # the first try and two retries
    track = Track.objects.get(pk=track_id)
    assert track.status == TrackStatus.FAILED and track.charge_returned_at
    assert balance(user) == 5
    generate_track.apply(args=[track_id])  # redelivered after the failure
    services.fail_generation(track_id=track_id, error="again")
    assert balance(user) == 5
    refunds = LedgerEntry.objects.filter(user=user, kind=EntryKind.REFUND)
    assert refunds.count() == 1
    assert "failed" in refunds.get().memo  # visible in the history
    assert "was given back" in client.get("/studio/").content.decode()


def test_failing_engine_gives_the_allowance_back(client, user, settings):
    settings.TRACKS_ENGINE = "tests.engines.FailingEngine"
    subscribe(user)
    client.force_login(user)
    track_id = generate(client).json()["track_id"]
    assert sub_selectors.allowance_remaining(user) == 4

    generate_track.apply(args=[track_id])

    assert sub_selectors.allowance_remaining(user) == 5
    assert balance(user) == 5


def test_rights_are_fixed_when_made(client, user):
    without = make_ready_track(user, title="Before", is_published=True)
    subscribe(user)
    with_rights = make_ready_track(user, title="After", is_published=True)

    assert "<strong>none</strong>" in client.get(f"/tracks/{without.pk}/").content.decode()
    assert "<strong>active</strong>" in client.get(f"/tracks/{with_rights.pk}/").content.decode()
    Subscription.objects.filter(user=user).update(status="canceled")
    assert "<strong>lapsed</strong>" in client.get(f"/tracks/{with_rights.pk}/").content.decode()
    assert "<strong>none</strong>" in client.get(f"/tracks/{without.pk}/").content.decode()


def test_only_the_owner_downloads_the_full_file_everyone_hears_the_preview(client, user):
    track = make_ready_track(user, is_published=True)
    stranger = UserFactory()

    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    client.force_login(stranger)
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
    assert "audio_url" not in client.get(f"/api/tracks/{track.pk}").json()
    assert client.get(f"/tracks/{track.pk}/preview").status_code == 200
    # The files are never served from a guessable public URL.
    assert client.get("/media/" + track.audio.name).status_code == 404
    assert client.get("/" + track.audio.name).status_code == 404
    client.force_login(user)
    assert client.get(f"/tracks/{track.pk}/download").status_code == 200


def test_an_unpublished_track_is_invisible_to_others(client, user):
    track = make_ready_track(user)

    for path in (
        f"/tracks/{track.pk}/",
        f"/tracks/{track.pk}/preview",
        f"/tracks/{track.pk}/download",
        f"/api/tracks/{track.pk}",
    ):
        assert client.get(path).status_code == 404, path
    assert "Song" not in client.get(f"/artists/{user.slug}/").content.decode()
    client.force_login(user)
    assert client.get(f"/tracks/{track.pk}/").status_code == 200


def test_studio_publish_price_and_delete(client, user):
    track = make_ready_track(user)
    client.force_login(user)

    client.post(f"/studio/tracks/{track.pk}/publish", {"published": "1"})
    client.post(f"/studio/tracks/{track.pk}/price", {"price_credits": "3", "for_sale": "on"})
    page = client.get(f"/artists/{user.slug}/").content.decode()
    assert "Song" in page and "3 credits" in page

    bad = client.post(f"/studio/tracks/{track.pk}/price", {"price_credits": "0"}, follow=True)
    assert "at least 1" in bad.content.decode()
    track.refresh_from_db()
    assert track.price_credits == 3

    other = Client()
    other.force_login(UserFactory())
    assert other.post(f"/studio/tracks/{track.pk}/delete").status_code == 404
    audio_path = track.audio.path
    client.post(f"/studio/tracks/{track.pk}/delete")
    assert not Track.objects.exists()
    assert not os.path.exists(audio_path)


def _publish_n(artist, n):
    Track.objects.bulk_create(
        Track(
            creator=artist,
            title=f"T{i}",
            prompt="p",
            genre="pop",
            mood="happy",
            duration_seconds=60,
            seed=i,
            status="ready",
            is_published=True,
            charge_kind="credits",
            published_at="2026-11-01T00:00:00Z",
        )
        for i in range(n)
    )


@pytest.mark.parametrize("signed_in", [False, True])
def test_artist_page_queries_do_not_grow_with_tracks(client, signed_in):
    small, large = UserFactory(), UserFactory()
    _publish_n(small, 10)
    _publish_n(large, 200)
    if signed_in:
        client.force_login(UserFactory())

    counts = {}
    for artist in (small, large):
        with CaptureQueriesContext(connection) as cold:
            response = client.get(f"/artists/{artist.slug}/")
        assert response.status_code == 200
        counts[artist.slug] = len(cold)
    assert counts[small.slug] == counts[large.slug]
    page = client.get(f"/artists/{large.slug}/").content.decode()
    assert "200 published tracks" in page and page.count('class="track-row"') == 20
    assert "Page 1 of 10" in page


def test_artist_page_cache_never_serves_a_stale_list(
    client, user, django_capture_on_commit_callbacks
):
    first = make_ready_track(user, title="First Song")
    with django_capture_on_commit_callbacks(execute=True):  # as the request's commit would
        services.publish(track=first, published=True)
    assert "First Song" in client.get(f"/artists/{user.slug}/").content.decode()  # cached now

    second = make_ready_track(user, title="Second Song")
    with django_capture_on_commit_callbacks(execute=True):  # as the request's commit would
        services.publish(track=second, published=True)
    page = client.get(f"/artists/{user.slug}/").content.decode()
    assert "Second Song" in page and "First Song" in page

    with django_capture_on_commit_callbacks(execute=True):  # as the request's commit would
        services.set_price(track=second, price_credits=7, for_sale=True)
    assert "7 credits" in client.get(f"/artists/{user.slug}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):  # as the request's commit would
        services.publish(track=first, published=False)
    assert "First Song" not in client.get(f"/artists/{user.slug}/").content.decode()

    from accounts.services import update_profile

    with django_capture_on_commit_callbacks(execute=True):  # as the request's commit would
        update_profile(user=user, display_name="Renamed Artist", slug="renamed-artist")
    assert client.get("/artists/renamed-artist/").status_code == 200
    assert "Renamed Artist" in client.get("/artists/renamed-artist/").content.decode()
    # The old address is no longer served from the cache: it redirects (issue 12).
    old = client.get(f"/artists/{first.creator.slug}/")
    assert (old.status_code, old["Location"]) == (301, "/artists/renamed-artist/")


def _run_concurrently(n, fn):
    barrier = threading.Barrier(n)
    results = []

    def worker():
        try:
            barrier.wait()
            results.append(fn())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("subscriber", [False, True])
def test_twenty_concurrent_generate_requests_with_seven_available(subscriber):
    user = UserFactory()
    spend(user=user, amount=3, reason="setup", idempotency_key="s")  # 2 credits left
    if subscriber:  # 5 allowance + 2 credits = 7
        subscribe(user)
    else:  # top up to 7 credits
        from credits.services import grant

        grant(user=user, amount=5, source="admin", idempotency_key="topup")

    def request():
        client = Client()
        client.force_login(user)
        return generate(client).status_code

    codes = _run_concurrently(20, request)

    assert sorted(codes) == [202] * 7 + [402] * 13
    assert balance(user) == 0
    assert Track.objects.count() == 7
    kinds = sorted(Track.objects.values_list("charge_kind", flat=True))
    expected = ["allowance"] * 5 + ["credits"] * 2 if subscriber else ["credits"] * 7
    assert kinds == expected


def _database_url() -> str:
    db = connection.settings_dict
    host, port = db["HOST"], db.get("PORT") or db["OPTIONS"].get("port") or 5432
    if host.startswith("/"):
        return f"postgres://{db['USER']}@/{host}/{db['NAME']}?port={port}"
    return f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_generates_the_track(tmp_path):
    """The whole flow: HTTP request, on-commit enqueue, a worker process, the files."""
    user = UserFactory()
    client = Client()
    client.force_login(user)
    with celery_worker(
        queue="celery",
        DATABASE_URL=_database_url(),
        MEDIA_ROOT=str(django_settings.MEDIA_ROOT),
    ):
        track_id = generate(client, duration_seconds=4).json()["track_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = client.get(f"/api/tracks/{track_id}").json()
            if state["status"] in ("ready", "failed"):
                break
            time.sleep(0.2)
    assert state["status"] == "ready", state
    assert client.get(state["audio_url"]).status_code == 200
