"""Tracks: generation speed, and the artist page with 200 tracks beside a trivial view.

Needs the bench database (run through `make bench`). Goals from the issue: one
minute of audio at least 20x faster than real time on one core; the artist page
at least 0.3x the request rate of a trivial view, measured side by side.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soundstudio.settings.test")
    import django

    django.setup()


def _rate(client, path: str, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        count += 1
    return count / (time.perf_counter() - start)


def bench_engine() -> None:
    from tracks.engine import TrackSpec, get_engine

    engine = get_engine()
    engine.generate(TrackSpec("warm-up", "warm-up", "pop", "neutral", 2, 0))
    spec = TrackSpec("bench", "neon rain over the harbour", "electronic", "energetic", 60, 1)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    track = engine.generate(spec)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(
        f"tracks generate: 60 s of audio in {cpu:.2f} s CPU ({wall:.2f} s wall) "
        f"= {track.duration_seconds / cpu:.1f}x real time on one core (goal >= 20x)"
    )


def bench_artist_page(rounds: int = 3, seconds: float = 2.0) -> None:
    from django.test import Client, override_settings
    from django.utils import timezone

    from accounts.services import register_user
    from tracks.models import Track, TrackStatus

    tag = uuid.uuid4().hex[:8]
    artist = register_user(
        email=f"bench-{tag}@example.com", password=uuid.uuid4().hex, display_name=f"Bench {tag}"
    )
    now = timezone.now()
    Track.objects.bulk_create(
        Track(
            creator=artist,
            title=f"Track {i}",
            prompt="bench",
            genre="pop",
            mood="happy",
            duration_seconds=120,
            length_seconds=120.0,
            seed=i,
            status=TrackStatus.READY,
            is_published=True,
            published_at=now,
            charge_kind="credits",
            price_credits=1 + i % 5,
        )
        for i in range(200)
    )
    fan = register_user(
        email=f"bench-fan-{tag}@example.com", password=uuid.uuid4().hex, display_name="Fan"
    )
    # The fan owns some tracks on the first page and is paying for others, so every
    # kind of Buy button is drawn (owned, finish paying, credits, card).
    _fan_buys(fan, artist)
    page, trivial, floor = f"/artists/{artist.slug}/", "/ping", "/bench/signed-in-floor"
    # Anonymous visitors get the whole page held in memory; signed-in ones a held shell
    # filled with their own header and Buy buttons, read in one query with the session.
    with override_settings(ROOT_URLCONF="bench._urls"):
        for label, client in (
            ("anonymous", Client(SERVER_NAME="localhost")),
            ("signed in", Client(SERVER_NAME="localhost")),
        ):
            if label == "signed in":
                client.force_login(fan)
            paths = [page, trivial] + ([floor] if label == "signed in" else [])
            for path in paths:
                _rate(client, path, 0.5)  # warm up templates, connections and the cache
            rates = {path: [] for path in paths}
            for _ in range(rounds):
                for path in paths:
                    rates[path].append(_rate(client, path, seconds))
            ratio = statistics.median(
                p / t for p, t in zip(rates[page], rates[trivial], strict=True)
            )
            print(
                f"tracks artist page, {label} (200 tracks, 20 per page): "
                f"{statistics.median(rates[page]):.0f}/s  "
                f"trivial view: {statistics.median(rates[trivial]):.0f}/s  "
                f"ratio {ratio:.2f} (goal >= 0.3)"
            )
            if label == "signed in":
                least = statistics.median(
                    f / t for f, t in zip(rates[floor], rates[trivial], strict=True)
                )
                print(
                    "tracks signed-in floor (a view that reads only request.user): "
                    f"{statistics.median(rates[floor]):.0f}/s  ratio {least:.2f} "
                    "(no signed-in page can beat this)"
                )


def _fan_buys(fan, artist) -> None:
    """On the first page: two tracks owned (credits) and two being paid for by card."""
    from django.test import Client

    client = Client(SERVER_NAME="localhost")
    client.force_login(fan)
    newest = artist.tracks.order_by("-published_at", "-id")
    cheap = [t for t in newest[:20] if t.price_credits <= 2][:2]
    dear = [t for t in newest[:20] if t.price_credits >= 4][:2]
    for track in cheap + dear:
        response = client.post(f"/api/tracks/{track.pk}/purchase")
        assert response.status_code == 200, response.content


def main() -> None:
    _setup_django()
    from core.heap import freeze_after_startup

    freeze_after_startup()  # as soundstudio/wsgi.py does in every web process
    bench_engine()
    bench_artist_page()


if __name__ == "__main__":
    main()
