"""Synthesised drum kit: each sound is rendered once per track and then placed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .synth import DTYPE, SAMPLE_RATE

DRUMS = ("kick", "snare", "clap", "hat", "open_hat", "ride", "crash", "brush")


@dataclass(frozen=True, slots=True)
class KitSettings:
    kick_start_hz: float = 160.0
    kick_end_hz: float = 50.0
    kick_decay: float = 0.28
    snare_tone_hz: float = 190.0
    snare_decay: float = 0.14
    hat_decay: float = 0.035
    brightness: float = 1.0
    """1 = crisp; lower values smooth the noise, as for dusty lo-fi drums."""
    drive: float = 0.0


def _t(seconds: float, sr: int) -> np.ndarray:
    return np.arange(int(seconds * sr), dtype=DTYPE) / DTYPE(sr)


def _highpass(x: np.ndarray, times: int = 1) -> np.ndarray:
    """Crude highpass: first differences (+6 dB/octave each)."""
    for _ in range(times):
        x = np.diff(x, prepend=x[:1])
    return x


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving-average lowpass."""
    if width <= 1:
        return x
    return np.convolve(x, np.full(width, 1.0 / width, dtype=DTYPE), mode="same").astype(DTYPE)


def _normalise(x: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(x))) or 1.0
    return (x / DTYPE(peak)).astype(DTYPE)


def kick(kit: KitSettings, rng: np.random.Generator, sr: int) -> np.ndarray:
    t = _t(kit.kick_decay * 5, sr)
    f0, f1, tau = kit.kick_start_hz, kit.kick_end_hz, 0.035
    # Exponential pitch drop, integrated analytically into the phase.
    phase = 2 * np.pi * (f1 * t + (f0 - f1) * tau * (1 - np.exp(-t / tau)))
    body = np.sin(phase) * np.exp(-t / kit.kick_decay)
    click = rng.standard_normal(t.size).astype(DTYPE) * np.exp(-t / 0.002)
    out = body + 0.25 * click
    if kit.drive:
        out = np.tanh(out * (1 + kit.drive))
    return _normalise(out)


def snare(kit: KitSettings, rng: np.random.Generator, sr: int) -> np.ndarray:
    t = _t(kit.snare_decay * 5, sr)
    tone = np.sin(2 * np.pi * kit.snare_tone_hz * t * (1 - 0.3 * t)) * np.exp(-t / 0.05)
    noise = _highpass(rng.standard_normal(t.size).astype(DTYPE))
    noise = _smooth(noise, max(1, round(3 / kit.brightness)))
    out = 0.6 * tone + 0.5 * noise * np.exp(-t / kit.snare_decay)
    return _normalise(out)


def clap(kit: KitSettings, rng: np.random.Generator, sr: int) -> np.ndarray:
    t = _t(0.35, sr)
    noise = _highpass(rng.standard_normal(t.size).astype(DTYPE))
    env = np.exp(-t / 0.09)
    # Several hands a few milliseconds apart.
    for offset in (0.008, 0.017, 0.026):
        env = env + 0.8 * np.exp(-np.maximum(t - offset, 0) / 0.006) * (t >= offset)
    env[t < 0.001] *= 0.0
    return _normalise(_smooth(noise * env, max(1, round(2 / kit.brightness))))


def hat(kit: KitSettings, rng: np.random.Generator, sr: int, decay: float) -> np.ndarray:
    t = _t(decay * 6, sr)
    noise = _highpass(rng.standard_normal(t.size).astype(DTYPE))
    metal = sum(
        np.sign(np.sin(2 * np.pi * f * t)) for f in (3140.0, 4570.0, 6220.0, 7890.0)
    ).astype(DTYPE)
    out = (noise + 0.15 * _highpass(metal)) * np.exp(-t / decay)
    out = _smooth(out, max(2, round(2 / kit.brightness)))
    return _normalise(out)


def cymbal(rng: np.random.Generator, sr: int, decay: float, ping: float) -> np.ndarray:
    t = _t(decay * 4, sr)
    noise = _smooth(_highpass(rng.standard_normal(t.size).astype(DTYPE)), 2)
    bell = sum(np.sin(2 * np.pi * f * t) for f in (510.0, 775.0, 1208.0, 2530.0, 3960.0))
    out = (noise + ping * bell.astype(DTYPE)) * np.exp(-t / decay)
    return _normalise(out)


def brush(rng: np.random.Generator, sr: int) -> np.ndarray:
    t = _t(0.3, sr)
    noise = _smooth(rng.standard_normal(t.size).astype(DTYPE), 3)
    env = np.minimum(t / 0.02, 1) * np.exp(-t / 0.08)
    return _normalise(_highpass(noise) * env)


def build_kit(
    kit: KitSettings, rng: np.random.Generator, sr: int = SAMPLE_RATE
) -> dict[str, np.ndarray]:
    """All drum sounds for one track, as float32 arrays with peak 1."""
    # Levels relative to the kick: metal is loud to the ear at low amplitude.
    return {
        "kick": kick(kit, rng, sr),
        "snare": snare(kit, rng, sr) * DTYPE(0.8),
        "clap": clap(kit, rng, sr) * DTYPE(0.7),
        "hat": hat(kit, rng, sr, kit.hat_decay) * DTYPE(0.4),
        "open_hat": hat(kit, rng, sr, kit.hat_decay * 7) * DTYPE(0.3),
        "ride": cymbal(rng, sr, 0.35, 0.5) * DTYPE(0.3),
        "crash": cymbal(rng, sr, 0.9, 0.08) * DTYPE(0.45),
        "brush": brush(rng, sr) * DTYPE(0.5),
    }
