from django.utils.functional import SimpleLazyObject

from credits.selectors import balance


def header_balance(request):
    """The signed-in user's balance for the page header, queried only if shown."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"header_balance": SimpleLazyObject(lambda: balance(user))}
