"""A small SVG of the track's peak envelope, for track pages and lists."""

from __future__ import annotations

import numpy as np

WIDTH = 600
HEIGHT = 80


def peaks(samples: np.ndarray, bars: int) -> np.ndarray:
    """Peak absolute amplitude in each of ``bars`` equal slices, scaled to 0..1."""
    mono = np.abs(samples if samples.ndim == 1 else samples.max(axis=1))
    bars = max(1, min(bars, mono.size))
    edges = np.linspace(0, mono.size, bars + 1).astype(np.int64)
    values = np.maximum.reduceat(mono, edges[:-1])
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else np.zeros(bars)


def waveform_svg(samples: np.ndarray, bars: int = 120) -> bytes:
    """Mirrored bars of the peak envelope, numbers rounded so the output is stable
    byte for byte. Pages show it with <img>, which cannot pass CSS colours into the
    picture, so the colour is fixed: a violet that reads on light and dark."""
    values = peaks(samples, bars)
    slot = WIDTH / values.size
    width = slot * 0.7
    mid = HEIGHT / 2
    rects = []
    for i, v in enumerate(values):
        h = max(1.0, float(v) * (HEIGHT - 4))
        rects.append(
            f'<rect x="{i * slot:.1f}" y="{mid - h / 2:.1f}" width="{width:.1f}" '
            f'height="{h:.1f}" rx="1"/>'
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'preserveAspectRatio="none" role="img" aria-label="Waveform">'
        f'<g fill="#8b7bff">{"".join(rects)}</g></svg>'
    )
    return svg.encode("ascii")
