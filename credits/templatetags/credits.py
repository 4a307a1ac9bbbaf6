"""Template filters for credits: how soon a lot expires, in words."""

import datetime as dt

from django import template
from django.utils import timezone

from credits.selectors import EXPIRY_WARNING

register = template.Library()


def _now() -> dt.datetime:
    return timezone.now()


@register.filter
def expires_in(moment: dt.datetime | None) -> str:
    """ "in 2 days" (whole days left, rounded down), "in 5 hours" within a day."""
    if moment is None:
        return "never"
    left = moment - _now()
    if left >= dt.timedelta(days=1):
        return f"in {left.days} day{'' if left.days == 1 else 's'}"
    hours = int(left.total_seconds() // 3600)
    if hours >= 1:
        return f"in {hours} hour{'' if hours == 1 else 's'}"
    return "within the hour"


@register.filter
def expires_soon(moment: dt.datetime | None) -> bool:
    """Within the warning window (3 days): shown in the warning colour, e-mailed once."""
    return moment is not None and moment - _now() <= EXPIRY_WARNING
