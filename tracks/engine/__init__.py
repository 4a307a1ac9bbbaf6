"""Track generation engines, free of Django so they run in workers, scripts and tests.

The app picks one with a dotted path (the ``TRACKS_ENGINE`` setting) through
``get_engine``; ``ProceduralEngine`` is the default::

    engine = get_engine(settings.TRACKS_ENGINE)
    spec = TrackSpec(title, prompt, genre, mood, duration_seconds=90, seed=1234)
    track = engine.generate(spec, progress=lambda done: task.update_state(meta={"p": done}))
    # track.audio (MP3 bytes), track.preview (30 s MP3), track.waveform (SVG bytes),
    # track.duration_seconds, track.tempo_bpm, track.key

``TrackSpec`` raises ``ValueError`` for a duration outside 1..180 s; unknown genres
and moods fall back to ``DEFAULT_GENRE`` and ``NEUTRAL_MOOD``.
"""

from __future__ import annotations

import importlib

from .base import Engine, GeneratedTrack, ProgressCallback, TrackSpec, validate_duration
from .choices import (
    DEFAULT_GENRE,
    GENRE_CHOICES,
    GENRES,
    MAX_DURATION_SECONDS,
    MIN_DURATION_SECONDS,
    MOOD_CHOICES,
    MOODS,
    NEUTRAL_MOOD,
    PREVIEW_SECONDS,
    normalize_genre,
    normalize_mood,
)

DEFAULT_ENGINE = "tracks.engine.procedural.ProceduralEngine"

__all__ = [
    "DEFAULT_ENGINE",
    "DEFAULT_GENRE",
    "GENRES",
    "GENRE_CHOICES",
    "MAX_DURATION_SECONDS",
    "MIN_DURATION_SECONDS",
    "MOODS",
    "MOOD_CHOICES",
    "NEUTRAL_MOOD",
    "PREVIEW_SECONDS",
    "Engine",
    "GeneratedTrack",
    "ProgressCallback",
    "TrackSpec",
    "get_engine",
    "normalize_genre",
    "normalize_mood",
    "validate_duration",
]


def get_engine(dotted_path: str | None = None) -> Engine:
    """Instantiate the ``Engine`` subclass named by ``"package.module.ClassName"``
    (``DEFAULT_ENGINE`` when None or empty).

    Raises ``ImportError`` if it cannot be found and ``TypeError`` if it is not an Engine.
    """
    path = dotted_path or DEFAULT_ENGINE
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ImportError(f"{path!r} is not a dotted path to an engine class")
    module = importlib.import_module(module_name)
    try:
        cls = getattr(module, class_name)
    except AttributeError as exc:
        raise ImportError(f"module {module_name!r} has no engine class {class_name!r}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise TypeError(f"{path!r} is not a subclass of tracks.engine.Engine")
    return cls()
