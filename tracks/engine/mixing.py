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
    """Lowpass by a running mean of ``width`` samples (small widths: a sum of shifted
    copies, which needs no float64 cumulative sum over the whole track)."""
    if width <= 1:
        return x
    out = np.zeros_like(x)
    n = x.size
    shift = width // 2
    # out[i] = mean of x[i - shift : i - shift + width], zero-padded at the ends.
    for k in range(width):
        offset = k - shift
        if offset >= 0:
            out[: n - offset] += x[offset:]
        else:
            out[-offset:] += x[: n + offset]
    out *= DTYPE(1.0 / width)
    return out


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
    beat = beat_seconds * sr
    length = int(np.ceil(beat)) + 1
    one_beat = (1.0 - depth * np.exp(-np.arange(length) / (0.09 * sr))).astype(DTYPE)
    gain = np.empty(n, dtype=DTYPE)
    # Paste one beat's curve at each (rounded) beat so that the timing never drifts.
    for k in range(int(np.ceil(n / beat))):
        start = int(round(k * beat))
        end = min(int(round((k + 1) * beat)), n)
        gain[start:end] = one_beat[: end - start]
    return gain


def vinyl(n: int, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Lo-fi surface noise: a quiet hiss plus sparse crackles."""
    hiss = moving_average(rng.standard_normal(n, dtype=DTYPE), 8) * DTYPE(0.01)
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

    # Buses are added into the mix (and the reverb send) as soon as they are rendered,
    # so that a three-minute track holds a handful of buffers, not one per instrument.
    mix = np.zeros(n, dtype=DTYPE)
    if score.hits:
        kit = build_kit(style.kit, rng, sr)
        for hit in score.hits:
            place(mix, kit[hit.drum], int(round(hit.start * sr)), hit.velocity)
        mix *= DTYPE(levels.get("drums", 0.8))
    report(0.2)

    pump = sidechain_gain(n, score.beat_seconds, style.sidechain, sr) if style.sidechain else None
    send = np.zeros(n, dtype=DTYPE) if style.reverb else None
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
            bus = render_notes(notes, _brighten(timbre, brightness), n, sr)
            bus *= DTYPE(levels.get(part, 0.5))
            if pump is not None and part != "lead":
                bus *= pump
            mix += bus
            if send is not None and part != "bass":
                send += bus
            del bus
        report(0.2 + 0.6 * (i + 1) / len(timbres))
    del pump

    if send is not None:
        room = 1.0 if score.genre == "ambient" else 0.3
        wet = reverb(send, room, sr)
        del send
        wet *= DTYPE(style.reverb * 4)
        mix += wet
        del wet
    if style.lofi:
        mix = moving_average(mix, 4)
        mix += vinyl(n, rng, sr)
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
