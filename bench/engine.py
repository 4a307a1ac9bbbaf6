"""Speed of the default track engine: seconds of CPU per minute of generated audio.

Run from the repository root: ``python -m bench.engine``. No Django involved.
The target is at most 3 s per minute (20x real time) on one core, encoding included.
The engine is single-threaded (numpy's element-wise operations and libsndfile's
encoder do not use threads), so CPU time is the per-core figure; wall time is printed
too but depends on what else the machine is doing.
"""

from __future__ import annotations

import argparse
import time

from tracks.engine import TrackSpec, get_engine

GENRES = ("electronic", "ambient", "jazz")
SECONDS = 60


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--genres", nargs="+", default=list(GENRES))
    parser.add_argument("--seconds", type=int, default=SECONDS)
    parser.add_argument("--engine", default=None, help="dotted path, default procedural")
    args = parser.parse_args(argv or [])
    engine = get_engine(args.engine)
    # Warm-up: first calls pay for imports and libsndfile initialisation.
    engine.generate(TrackSpec("warm-up", "warm-up", "pop", "neutral", 2, 0))
    worst = 0.0
    for genre in args.genres:
        spec = TrackSpec(
            "bench", "a walk through the city at night", genre, "neutral", args.seconds, 7
        )
        wall0, cpu0 = time.perf_counter(), time.process_time()
        track = engine.generate(spec)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        per_minute = cpu * 60 / track.duration_seconds
        print(
            f"engine: {track.duration_seconds:.0f} s of {genre} in {wall:.2f} s wall, "
            f"{cpu:.2f} s CPU = {track.duration_seconds / cpu:.1f}x real time "
            f"({per_minute:.2f} s CPU per minute of audio; {track.tempo_bpm} bpm, "
            f"{track.key}, {len(track.audio) // 1024} KiB {track.audio_extension})"
        )
        worst = max(worst, per_minute)
    print(
        f"engine: worst {worst:.2f} s CPU per minute of audio = {60 / worst:.1f}x real time "
        f"(target: at most 3.00 s, 20x)"
    )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
