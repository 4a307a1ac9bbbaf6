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
    """ "today", "tomorrow" or "in 5 days", counted in calendar days (UTC)."""
    if moment is None:
        return "never"
    days = (moment.astimezone(dt.UTC).date() - _now().astimezone(dt.UTC).date()).days
    if days <= 0:
        return "today"
    if days == 1:
        return "tomorrow"
    return f"in {days} days"


@register.filter
def expires_soon(moment: dt.datetime | None) -> bool:
    """Within the warning window (3 days): shown in the warning colour, e-mailed once."""
    return moment is not None and moment - _now() <= EXPIRY_WARNING
