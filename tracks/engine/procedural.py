"""The default engine: a rule-based composer and numpy synthesiser, no model needed."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .base import Engine, GeneratedTrack, ProgressCallback, TrackSpec, validate_duration
from .choices import normalize_genre, normalize_mood
from .composer import Score, compose
from .encoding import FORMATS, encode, preview_clip
from .mixing import render_mix
from .synth import SAMPLE_RATE
from .waveform import waveform_svg


def spec_entropy(spec: TrackSpec) -> int:
    """A stable 256-bit seed from what shapes the music: the prompt (case and spacing
    ignored), the effective genre and mood, and the seed; not the title. hashlib rather
    than hash(), whose value changes between processes."""
    payload = json.dumps(
        [
            " ".join(spec.prompt.lower().split()),
            normalize_genre(spec.genre),
            normalize_mood(spec.mood),
            spec.seed,
        ],
        ensure_ascii=True,
    )
    return int.from_bytes(hashlib.sha256(payload.encode("ascii")).digest(), "big")


class _Progress:
    """Forwards strictly increasing fractions, at most one per percent, to a callback."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.last = 0.0

    def __call__(self, fraction: float) -> None:
        if self.callback is None:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction >= self.last + 0.01 or (fraction == 1.0 and self.last < 1.0):
            self.last = fraction
            self.callback(fraction)

    def stage(self, start: float, end: float) -> ProgressCallback:
        """A callback mapping a sub-task's own 0..1 onto ``start..end`` of the whole."""
        return lambda f: self(start + (end - start) * f)


class ProceduralEngine(Engine):
    """Deterministic procedural composer: the same spec gives byte-identical files."""

    name = "procedural-1"
    sample_rate = SAMPLE_RATE

    def __init__(self, audio_format: str = "mp3") -> None:
        if audio_format not in FORMATS:
            raise ValueError(f"audio_format must be one of {sorted(FORMATS)}")
        self.format = FORMATS[audio_format]

    def compose(self, spec: TrackSpec) -> tuple[Score, np.random.Generator]:
        """The score for ``spec`` and the generator the renderer should go on with."""
        validate_duration(spec.duration_seconds)
        compose_seq, render_seq = np.random.SeedSequence(spec_entropy(spec)).spawn(2)
        score = compose(spec, np.random.default_rng(compose_seq))
        return score, np.random.default_rng(render_seq)

    def render(self, spec: TrackSpec, progress: ProgressCallback | None = None) -> np.ndarray:
        """The mastered mono float32 samples at ``sample_rate``, before encoding."""
        score, rng = self.compose(spec)
        return render_mix(score, rng, progress, self.sample_rate)

    def generate(self, spec: TrackSpec, progress: ProgressCallback | None = None) -> GeneratedTrack:
        report = _Progress(progress)
        sr = self.sample_rate
        score, rng = self.compose(spec)
        report(0.02)
        # Weights roughly follow where the time goes: synthesis, then the two encodes.
        samples = render_mix(score, rng, report.stage(0.02, 0.4), sr)
        audio = encode(samples, sr, self.format, report.stage(0.4, 0.8))
        clip = preview_clip(samples, sr, score.preview_start)
        preview = encode(clip, sr, self.format, report.stage(0.8, 0.98))
        waveform = waveform_svg(samples)
        report(1.0)
        return GeneratedTrack(
            audio=audio,
            audio_mime_type=self.format.mime_type,
            audio_extension=self.format.extension,
            preview=preview,
            preview_start_seconds=round(score.preview_start, 3),
            waveform=waveform,
            waveform_mime_type="image/svg+xml",
            waveform_extension="svg",
            duration_seconds=samples.shape[0] / sr,
            tempo_bpm=score.tempo_bpm,
            key=score.key.name,
            engine=self.name,
        )
