"""The credits page's chart: credits used per month (core.charts draws it)."""

from __future__ import annotations

from django.utils.safestring import SafeString

from core.charts import Series, bar_chart


def credits_used_chart(months) -> SafeString:
    """`months`: selectors.spent_by_month, oldest first."""
    return bar_chart(
        groups=[f"{m.start:%b %y}" for m in months],
        tooltips=[f"{m.start:%B %Y}" for m in months],
        series=[Series("Credits used", [m.credits for m in months], "#4f7cff")],
        label="Credits used per month, last 12 months",
    )
