from functools import cache

from credits.selectors import header_credits


def header_balance(request):
    """The signed-in user's balance, and credits about to expire, for the page header:
    one query, made only if a page shows them."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Templates call callables; the cache makes every use on a page one query.
    credits = cache(lambda: header_credits(user))
    return {
        "header_balance": lambda: credits().balance,
        "header_expiring": lambda: credits().expiring,
        "header_expiring_at": lambda: credits().expiring_at,
    }
