"""The revenue page's SVG bar chart of the last 12 months (core.charts draws it)."""

from __future__ import annotations

from django.utils.safestring import SafeString

from books import money
from core.charts import Series, bar_chart

SERIES = [
    ("Card money in", "card_in_total", "#4f7cff"),
    ("Recognized revenue", "revenue_total", "#2bb673"),
    ("Refunds paid", "refunds_paid", "#e5534b"),
]


def revenue_chart(months) -> SafeString:
    return bar_chart(
        groups=[f"{m.start:%b %y}" for m in months],
        tooltips=[f"{m.start:%b %Y}" for m in months],
        series=[
            Series(label, [getattr(m, attr) for m in months], colour)
            for label, attr, colour in SERIES
        ],
        label="Money in, revenue and refunds, last 12 months",
        fmt=money.display,
        at_least=100,  # cents: the axis reaches at least $1
    )
