"""Server-rendered SVG bar charts (no script, no CDN): groups of bars, one per series."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 760, 240
LEFT, BOTTOM, TOP = 70, 30, 16


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int]
    colour: str


def nice_ceiling(value: int, *, at_least: int = 1) -> int:
    """The smallest 1, 2 or 5 x 10^n at or above `value` (and `at_least`)."""
    value = max(value, at_least)
    step = 1
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if factor * step >= value:
            return factor * step
    return 10 * step


def bar_chart(
    *,
    groups: Sequence[str],
    tooltips: Sequence[str],
    series: Sequence[Series],
    label: str,
    fmt: Callable[[int], str] = str,
    at_least: int = 1,
) -> SafeString:
    """Bars of `series` over `groups` (x-axis labels; `tooltips` name each group in full).

    The y-axis runs from 0 to a round ceiling, with 4 grid lines labelled by `fmt`.
    Whole-number axes (credits) keep their grid labels whole by choosing a ceiling
    divisible by 4 when the values are small.
    """
    top = nice_ceiling(max((v for s in series for v in s.values), default=0), at_least=at_least)
    if top < 4 * at_least:
        top = 4 * at_least
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - BOTTOM - TOP
    group = plot_w / max(len(groups), 1)
    bar = group * 0.8 / max(len(series), 1)
    bars, labels, grid = [], [], []
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        grid.append((LEFT, y, WIDTH - 10, y, LEFT - 6, y + 4, fmt(top * i // 4)))
    for i, name in enumerate(groups):
        x0 = LEFT + group * i + group * 0.1
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot_h * value / top
            bars.append(
                (
                    f"{x0 + j * bar:.1f}",
                    f"{TOP + plot_h - h:.1f}",
                    f"{bar - 1:.1f}",
                    f"{h:.1f}",
                    s.colour,
                    f"{tooltips[i]} {s.label}: {fmt(value)}",
                )
            )
        labels.append((f"{LEFT + group * i + group / 2:.1f}", HEIGHT - 10, name))
    legend = format_html_join(
        "",
        '<rect x="{}" y="2" width="10" height="10" fill="{}"/>'
        '<text x="{}" y="11" font-size="11">{}</text>',
        ((LEFT + 150 * k, s.colour, LEFT + 150 * k + 14, s.label) for k, s in enumerate(series)),
    )
    return format_html(
        '<svg role="img" aria-label="{}" class="chart" viewBox="0 0 {} {}" width="100%" '
        'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">'
        "{}{}{}{}</svg>",
        label,
        WIDTH,
        HEIGHT,
        format_html_join(
            "",
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ccc" stroke-width="1"/>'
            '<text x="{}" y="{}" font-size="10" text-anchor="end" fill="#666">{}</text>',
            grid,
        ),
        format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
            bars,
        ),
        format_html_join(
            "",
            '<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#666">{}</text>',
            labels,
        ),
        legend,
    )
