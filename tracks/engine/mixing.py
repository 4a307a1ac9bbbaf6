"""From score to a mastered mono buffer: instruments, effects, mix bus, limiter."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from .composer import Score
from .drums import build_kit
from .synth import DTYPE, SAMPLE_RATE, Timbre, place, render_notes

TARGET_RMS = 0.17
PEAK = 0.84
"""Headroom below full scale: MP3 encoding overshoots sample peaks by a few percent."""


def moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Lowpass by a centred running mean, in O(n) whatever the width."""
    if width <= 1:
        return x
    c = np.cumsum(x, dtype=np.float64)
    c = np.concatenate(([0.0] * width, c))
    out = (c[width:] - c[:-width]) / width
    shift = width // 2
    return np.concatenate((out[shift:], np.full(shift, out[-1]))).astype(DTYPE)


def reverb(x: np.ndarray, room: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The wet signal of a cheap reverb: parallel feedback combs, unrolled into a few
    delayed copies each (numpy has no recursive filter), then darkened."""
    wet = np.zeros_like(x)
    n = x.size
    taps = 4 + int(4 * room)
    for delay_ms in (29.7, 37.1, 41.1, 43.7, 53.3):
        delay = int(delay_ms * (1 + 2 * room) * sr / 1000)
        gain = 1.0
        for k in range(1, taps + 1):
            shift = k * delay
            if shift >= n:
                break
            gain *= 0.72
            wet[shift:] += DTYPE(gain) * x[: n - shift]
    return moving_average(wet, 6) * DTYPE(0.25)


def sidechain_gain(n: int, beat_seconds: float, depth: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The pumping of a compressor keyed by a four-on-the-floor kick."""
    phase = (np.arange(n, dtype=np.float64) / sr) % beat_seconds
    return (1.0 - depth * np.exp(-phase / 0.09)).astype(DTYPE)


def vinyl(n: int, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Lo-fi surface noise: a quiet hiss plus sparse crackles."""
    hiss = moving_average(rng.standard_normal(n).astype(DTYPE), 8) * DTYPE(0.01)
    clicks = np.zeros(n, dtype=DTYPE)
    count = int(n / sr * 6)
    where = rng.integers(0, n, size=count)
    clicks[where] = rng.uniform(-0.25, 0.25, size=count).astype(DTYPE)
    return hiss + moving_average(clicks, 3)


def render_mix(
    score: Score,
    rng: np.random.Generator,
    progress: Callable[[float], None] | None = None,
    sr: int = SAMPLE_RATE,
) -> np.ndarray:
    """Render and master the score into ``duration * sr`` float32 samples in -1..1."""
    style = score.style
    n = int(round(score.duration * sr))
    levels = style.levels
    brightness = score.profile.brightness

    def report(fraction: float) -> None:
        if progress:
            progress(fraction)

    drums = np.zeros(n, dtype=DTYPE)
    if score.hits:
        kit = build_kit(style.kit, rng, sr)
        for hit in score.hits:
            place(drums, kit[hit.drum], int(round(hit.start * sr)), hit.velocity)
    report(0.2)

    buses: dict[str, np.ndarray] = {}
    timbres: dict[str, Timbre | None] = {
        "bass": style.bass_timbre,
        "harmony": style.harmony_timbre,
        "pad": style.pad_timbre,
        "lead": style.lead_timbre,
        "arp": style.arp_timbre,
    }
    for i, (part, timbre) in enumerate(timbres.items()):
        notes = score.parts.get(part) or []
        if timbre is not None and notes:
            buses[part] = render_notes(notes, _brighten(timbre, brightness), n, sr)
        report(0.2 + 0.6 * (i + 1) / len(timbres))

    mix = drums * DTYPE(levels.get("drums", 0.8))
    if style.sidechain:
        pump = sidechain_gain(n, score.beat_seconds, style.sidechain, sr)
        for part in ("bass", "harmony", "pad", "arp"):
            if part in buses:
                buses[part] *= pump
    send = np.zeros(n, dtype=DTYPE)
    for part, buf in buses.items():
        buf *= DTYPE(levels.get(part, 0.5))
        mix += buf
        if part != "bass":
            send += buf
    if style.reverb:
        room = 1.0 if score.genre == "ambient" else 0.3
        mix += reverb(send, room, sr) * DTYPE(style.reverb * 4)
    if style.lofi:
        mix = moving_average(mix, 4) + vinyl(n, rng, sr)
    report(0.9)
    mix = _master(mix, sr)
    report(1.0)
    return mix


def _brighten(timbre: Timbre, brightness: float) -> Timbre:
    """Dull moods roll off upper partials, bright ones keep them."""
    if brightness >= 0.6 or len(timbre.harmonics) < 3:
        return timbre
    keep = 0.4 + brightness
    harmonics = tuple(a * keep ** (k // 2) for k, a in enumerate(timbre.harmonics))
    return dataclasses.replace(timbre, harmonics=harmonics)


def _master(mix: np.ndarray, sr: int) -> np.ndarray:
    mix -= DTYPE(mix.mean())
    rms = float(np.sqrt(np.mean(np.square(mix, dtype=np.float64))))
    if rms > 1e-9:
        mix *= DTYPE(TARGET_RMS / rms)
    # Soft limiter: transparent at low levels, rounds off the peaks.
    mix = np.tanh(mix * DTYPE(1.6)) / DTYPE(1.6)
    n = mix.size
    fade_in = min(int(0.01 * sr), n)
    mix[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=DTYPE)
    fade_out = min(int(3.0 * sr), int(0.2 * n))
    if fade_out > 0:
        mix[n - fade_out :] *= np.linspace(1.0, 0.0, fade_out, dtype=DTYPE) ** 2
    peak = float(np.max(np.abs(mix)))
    if peak > 0:
        mix *= DTYPE(PEAK / peak)
    return mix
