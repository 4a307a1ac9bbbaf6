"""A server-rendered SVG bar chart of the revenue page's last 12 months (no script, no CDN)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from books import money

WIDTH, HEIGHT = 760, 240
LEFT, BOTTOM, TOP = 70, 30, 16
SERIES = [
    ("Card money in", "card_in_total", "#4f7cff"),
    ("Recognized revenue", "revenue_total", "#2bb673"),
    ("Refunds paid", "refunds_paid", "#e5534b"),
]


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 x 10^n cents at or above `value` (at least $1)."""
    value = max(value, 100)
    step = 1
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if factor * step >= value:
            return factor * step
    return 10 * step


def revenue_chart(months) -> SafeString:
    top = _nice_ceiling(max((getattr(m, attr) for m in months for _, attr, _ in SERIES), default=0))
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - BOTTOM - TOP
    group = plot_w / max(len(months), 1)
    bar = group * 0.8 / len(SERIES)
    bars, labels, grid = [], [], []
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        grid.append((LEFT, y, WIDTH - 10, y, LEFT - 6, y + 4, money.display(top * i // 4)))
    for i, m in enumerate(months):
        x0 = LEFT + group * i + group * 0.1
        for j, (label, attr, colour) in enumerate(SERIES):
            value = getattr(m, attr)
            h = plot_h * value / top
            bars.append(
                (
                    f"{x0 + j * bar:.1f}",
                    f"{TOP + plot_h - h:.1f}",
                    f"{bar - 1:.1f}",
                    f"{h:.1f}",
                    colour,
                    f"{m.start:%b %Y} {label}: {money.display(value)}",
                )
            )
        labels.append((f"{LEFT + group * i + group / 2:.1f}", HEIGHT - 10, f"{m.start:%b %y}"))
    legend = format_html_join(
        "",
        '<rect x="{}" y="2" width="10" height="10" fill="{}"/>'
        '<text x="{}" y="11" font-size="11">{}</text>',
        (
            (LEFT + 150 * k, colour, LEFT + 150 * k + 14, label)
            for k, (label, _, colour) in enumerate(SERIES)
        ),
    )
    return format_html(
        '<svg role="img" aria-label="Money in, revenue and refunds, last 12 months" '
        'viewBox="0 0 {} {}" width="100%" class="rev-chart" '
        'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">'
        "{}{}{}{}</svg>",
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
