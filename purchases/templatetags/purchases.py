from django import template

from purchases import selectors
from purchases.receipts import dollars as _dollars

register = template.Library()


@register.filter
def dollars(cents):
    """1234 -> $12.34; None -> an em dash."""
    return _dollars(cents)


@register.filter
def sale_method(purchase):
    """How a sale was paid: "card", "3 credits" or "paid with promotional credits"."""
    return selectors.method_label(purchase)
