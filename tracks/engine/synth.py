"""Vectorised tone synthesis: additive oscillators with envelopes, written into buffers.

Notes are rendered one at a time but each note is a handful of whole-array numpy
operations, and identical notes (same pitch, length and timbre) are rendered once
and reused, which is what keeps a minute of audio at a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .theory import midi_to_hz

SAMPLE_RATE = 44100
DTYPE = np.float32


@dataclass(frozen=True, slots=True)
class Timbre:
    """A simple additive voice. Amplitudes in ``harmonics`` are for partials 1, 2, 3..."""

    harmonics: tuple[float, ...] = (1.0,)
    attack: float = 0.005
    decay: float = 0.3
    sustain: float = 0.6
    release: float = 0.08
    harmonic_decay: float = 0.0
    """Extra decay per second and per partial number: upper partials die first, as on a
    plucked or struck string."""
    detune_cents: float = 0.0
    """If non-zero, a second voice this many cents sharp thickens the tone."""
    drive: float = 0.0
    """tanh waveshaping gain; > 0 gives a distorted, guitar-amp-like tone."""
    gain: float = 1.0


@dataclass(frozen=True, slots=True)
class Note:
    start: float
    """Onset in seconds."""
    length: float
    """Gate length in seconds; the release tail sounds after it."""
    midi: int
    velocity: float


def envelope(n: int, gate: int, timbre: Timbre, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Attack/decay/sustain while the gate is held, then a release that reaches zero."""
    t = np.arange(n, dtype=DTYPE) / DTYPE(sr)
    s = DTYPE(timbre.sustain)
    env = s + (DTYPE(1) - s) * np.exp(-t / DTYPE(max(timbre.decay, 1e-4)))
    attack = min(max(int(timbre.attack * sr), 1), n)
    env[:attack] *= np.linspace(0.0, 1.0, attack, dtype=DTYPE)
    tail = n - gate
    if tail > 0:
        # Exponential fall times a linear ramp so the note ends at exactly zero: no click.
        r = np.arange(tail, dtype=DTYPE) / DTYPE(tail)
        env[gate:] *= np.exp(DTYPE(-4.0) * r) * (DTYPE(1) - r)
    return env


def tone(freq: float, n: int, gate: int, timbre: Timbre, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One note of ``n`` samples (gate + release) at ``freq`` Hz, peak around 1."""
    out = _partials(freq, n, timbre, sr)
    if timbre.detune_cents:
        out += _partials(freq * 2.0 ** (timbre.detune_cents / 1200.0), n, timbre, sr)
        out *= DTYPE(0.5)
    if timbre.drive > 0:
        out = np.tanh(out * DTYPE(timbre.drive)) / DTYPE(np.tanh(timbre.drive))
    out *= envelope(n, gate, timbre, sr)
    if timbre.gain != 1.0:
        out *= DTYPE(timbre.gain)
    return out


def _partials(freq: float, n: int, timbre: Timbre, sr: int) -> np.ndarray:
    t = np.arange(n, dtype=np.float64) / sr
    # Wrap the phase in float64 before going to float32: a float32 phase of thousands of
    # radians is only accurate to ~1e-3, which is audible as hiss on long notes.
    theta = ((freq * t) % 1.0).astype(DTYPE) * DTYPE(2.0 * np.pi)
    # sin(k*theta) by the Chebyshev recurrence: one multiply-add per partial instead of
    # a sin() call, which is the dominant cost otherwise.
    s_prev = np.zeros(n, dtype=DTYPE)
    s_k = np.sin(theta)
    two_cos = DTYPE(2) * np.cos(theta)
    damp = None
    if timbre.harmonic_decay:
        step = np.exp(-t.astype(DTYPE) * DTYPE(timbre.harmonic_decay))
        damp = step.copy()
    out = np.zeros(n, dtype=DTYPE)
    nyquist = 0.45 * sr
    total = 0.0
    for k, amp in enumerate(timbre.harmonics, start=1):
        if k * freq >= nyquist:
            break
        if amp:
            total += abs(amp)
            if damp is None:
                out += DTYPE(amp) * s_k
            else:
                out += DTYPE(amp) * s_k * damp
        if damp is not None:
            damp *= step
        s_prev, s_k = s_k, two_cos * s_k - s_prev
    if total:
        out *= DTYPE(1.0 / total)
    return out


def render_notes(
    notes: Iterable[Note], timbre: Timbre, length: int, sr: int = SAMPLE_RATE
) -> np.ndarray:
    """Mix ``notes`` into a new buffer of ``length`` samples."""
    buf = np.zeros(length, dtype=DTYPE)
    release = int(timbre.release * sr)
    cache: dict[tuple[int, int], np.ndarray] = {}
    for note in notes:
        start = int(round(note.start * sr))
        if start >= length or note.velocity <= 0:
            continue
        gate = max(int(round(note.length * sr)), 1)
        key = (note.midi, gate)
        wave = cache.get(key)
        if wave is None:
            wave = tone(midi_to_hz(note.midi), gate + release, gate, timbre, sr)
            cache[key] = wave
        end = min(start + wave.size, length)
        buf[start:end] += DTYPE(note.velocity) * wave[: end - start]
    return buf


def place(buf: np.ndarray, sample: np.ndarray, start: int, gain: float) -> None:
    """Add ``sample`` times ``gain`` into ``buf`` at ``start``, cut at the buffer's end."""
    if start >= buf.size or start < 0:
        return
    end = min(start + sample.size, buf.size)
    buf[start:end] += DTYPE(gain) * sample[: end - start]
