from functools import cache

from credits.selectors import balance


def header_balance(request):
    """The signed-in user's balance for the page header, queried once and only if shown."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Templates call callables; the cache makes every use on a page one query.
    return {"header_balance": cache(lambda: balance(user))}
