"""The pluggable engine interface: what goes in, what comes out."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field

from .choices import MAX_DURATION_SECONDS, MIN_DURATION_SECONDS

ProgressCallback = Callable[[float], None]
"""Receives the fraction done, 0..1, non-decreasing, the last call being 1.0."""


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """What the user asked for. ``genre`` and ``mood`` may be free text; engines map
    unknown values to a default instead of failing."""

    title: str
    prompt: str
    genre: str
    mood: str
    duration_seconds: int
    seed: int

    def __post_init__(self) -> None:
        validate_duration(self.duration_seconds)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")


def validate_duration(duration_seconds: object) -> int:
    """Return the duration if it is a whole number of seconds within the allowed range."""
    if isinstance(duration_seconds, bool) or not isinstance(duration_seconds, int):
        raise ValueError(f"duration_seconds must be an integer, got {duration_seconds!r}")
    if not MIN_DURATION_SECONDS <= duration_seconds <= MAX_DURATION_SECONDS:
        raise ValueError(
            f"duration_seconds must be between {MIN_DURATION_SECONDS} and "
            f"{MAX_DURATION_SECONDS}, got {duration_seconds}"
        )
    return duration_seconds


@dataclass(frozen=True, slots=True)
class GeneratedTrack:
    """An engine's result. The byte fields are ready to be saved as files."""

    audio: bytes = field(repr=False)
    audio_mime_type: str
    audio_extension: str
    preview: bytes = field(repr=False)
    preview_start_seconds: float
    waveform: bytes = field(repr=False)
    waveform_mime_type: str
    waveform_extension: str
    duration_seconds: float
    tempo_bpm: int
    key: str
    engine: str
    """``Engine.name`` of the engine that made it, to be stored alongside the track."""


class Engine(abc.ABC):
    """A track generator. Subclasses must be constructible without arguments so that
    ``get_engine`` can build them from a dotted path."""

    name: str = "abstract"

    @abc.abstractmethod
    def generate(self, spec: TrackSpec, progress: ProgressCallback | None = None) -> GeneratedTrack:
        """Make the track described by ``spec``.

        Raises ``ValueError`` for a spec that cannot be rendered (such as a duration
        out of range). ``progress``, when given, is called with growing fractions
        ending in 1.0; it must be cheap, since it runs inside the render loop.
        """
