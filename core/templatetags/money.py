"""Template filters for money in cents (and dict lookups for the admin desk)."""

from django import template

from books import money as books_money

register = template.Library()


@register.filter
def cents(value) -> str:
    """1234 -> "12.34" (with thousands separators); the template adds the "$"."""
    if value is None or value == "":
        return ""
    return f"{int(value) / 100:,.2f}"


@register.filter
def dollars(value) -> str:
    """1234 -> "$12.34", -100 -> "-$1.00", None -> "—" (unknown)."""
    return books_money.display(None if value is None else int(value))


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None
