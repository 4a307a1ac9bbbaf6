"""Compressed encoding through libsndfile, and the preview cut."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile

from .choices import PREVIEW_SECONDS
from .synth import DTYPE


@dataclass(frozen=True, slots=True)
class AudioFormat:
    name: str
    sf_format: str
    sf_subtype: str
    mime_type: str
    extension: str


FORMATS = {
    "mp3": AudioFormat("mp3", "MP3", "MPEG_LAYER_III", "audio/mpeg", "mp3"),
    "ogg": AudioFormat("ogg", "OGG", "VORBIS", "audio/ogg", "ogg"),
}


def encode(
    samples: np.ndarray,
    sr: int,
    fmt: AudioFormat,
    progress: Callable[[float], None] | None = None,
) -> bytes:
    """Encode mono or (n, channels) float samples into an in-memory file.

    Written one second at a time: a single huge write made libsndfile's Vorbis encoder
    crash the process on our machines, and the chunks give progress points for free.
    """
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    buf = io.BytesIO()
    n = samples.shape[0]
    with soundfile.SoundFile(
        buf, "w", samplerate=sr, channels=channels, format=fmt.sf_format, subtype=fmt.sf_subtype
    ) as out:
        for start in range(0, n, sr):
            out.write(samples[start : start + sr])
            if progress:
                progress(min(start + sr, n) / n)
    return buf.getvalue()


def preview_clip(
    samples: np.ndarray,
    sr: int,
    start_seconds: float,
    length_seconds: float = PREVIEW_SECONDS,
    fade_in: float = 1.0,
    fade_out: float = 2.0,
) -> np.ndarray:
    """``length_seconds`` from ``start_seconds`` (the whole track if shorter), faded at
    both ends so that the cut does not click."""
    n = samples.shape[0]
    length = min(int(round(length_seconds * sr)), n)
    start = min(max(int(round(start_seconds * sr)), 0), n - length)
    clip = np.array(samples[start : start + length], dtype=DTYPE)
    # Short tracks get proportionally shorter fades so that something is left between.
    fin = min(int(fade_in * sr), length // 10)
    fout = min(int(fade_out * sr), length // 5)
    if fin:
        clip[:fin] *= np.linspace(0.0, 1.0, fin, dtype=DTYPE)
    if fout:
        clip[length - fout :] *= np.linspace(1.0, 0.0, fout, dtype=DTYPE)
    return clip
