"""Pages rendered once for every signed-in visitor, their personal bits filled per request.

A page that extends base.html costs more to render than to serve from a cache, but a
signed-in visitor's copy is personal: the header (name, page, balance, expiring
credits, Admin), the log-out form's CSRF token, the messages. `render` draws the page
once as a *shell*, with an `<!--me:name-->` placeholder for each of those, by
overriding base.html's blocks (templates/_shell.html) and standing a placeholder user
in for the visitor. `compile` splits the shell at its placeholders once; `fill` joins
the pieces with this visitor's values, read fresh on every request. Nothing personal
is ever cached.

Placeholders cannot clash with a page's text: text is HTML-escaped, so `<!--` is never
in it. The shell holds no CSP nonce (pages have no inline scripts), and the key of a
cached shell carries what base.html shows that is the same for everyone but may
change: the year, test mode and Stripe's publishable key (`key`).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from html import escape

from django.contrib.messages import get_messages
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from core.context_processors import site
from core.csrf import get_token
from credits.selectors import HeaderCredits

# Every placeholder a page's shell may hold: this module's, and the Buy buttons'
# (purchases.buttons). `compile` splits a shell at them once; `fill` joins the pieces.
SLOT = re.compile(r"<!--(me:\w+|buy:\d+:\d+:[01])-->")


def _mark(name: str):
    return mark_safe(f"<!--me:{name}-->")  # noqa: S308 - a constant


class _ShellUser:
    """Who base.html thinks is signed in while a shell is drawn."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False  # the Admin link is a placeholder of its own (block header_admin)
    display_name = _mark("name")

    def get_absolute_url(self):
        # The visitor's page with their slug as a placeholder: a slug is [a-z0-9-]
        # (a CHECK constraint), which the URL holds as it is.
        url = reverse("artist_detail", kwargs={"slug": "shell-slug-0"})
        return mark_safe(url.replace("shell-slug-0", "<!--me:slug-->"))  # noqa: S308 - our URL


def key() -> str:
    """What a cached shell depends on besides its page (see the module's docstring)."""
    values = site(None)
    return _key(
        timezone.localtime().year, values["stripe_test_mode"], values["stripe_publishable_key"]
    )


@lru_cache(maxsize=16)
def _key(year: int, test_mode: bool, publishable_key: str) -> str:
    digest = hashlib.blake2b(publishable_key.encode(), digest_size=6).hexdigest()
    return f"{year}:{test_mode:d}:{digest}"


def render(template_name: str, context: dict) -> str:
    """The page as a shell: every signed-in visitor's bits are placeholders."""
    return render_to_string(
        "_shell.html",
        {
            **site(None),
            **context,
            "page_template": template_name,
            "user": _ShellUser(),
            "csrf_token": _mark("csrf"),
            "header_balance": _mark("balance"),
        },
    )


def credits_text(balance: int) -> str:
    """The balance pill's text, as base.html's block header_balance writes it."""
    return f"{balance} credit{'' if balance == 1 else 's'}"


def compile(shell: str) -> tuple[str, ...]:
    """The shell split at its placeholders: text, slot, text, ..., text."""
    return tuple(SLOT.split(shell))


def fill(parts: tuple[str, ...], request, *, credits: HeaderCredits, more=None) -> str:
    """The compiled shell with the signed-in visitor's own header, token and messages,
    and `more` slots ({slot: html}, such as the Buy buttons)."""
    user = request.user
    values = {
        "me:name": escape(user.display_name),
        "me:slug": escape(user.slug),
        "me:balance": str(int(credits.balance)),
        "me:balance_text": credits_text(credits.balance),
        "me:csrf": escape(get_token(request)),
        "me:admin": f'<a href="{escape(reverse("admin:index"))}">Admin</a>'
        if user.is_staff
        else "",
        "me:expiry": "",
        "me:messages": "",
    }
    if credits.expiring:  # rare: the template, as every other page draws it
        values["me:expiry"] = render_to_string(
            "_expiry_warning.html",
            {"header_expiring": credits.expiring, "header_expiring_at": credits.expiring_at},
        )
    messages = get_messages(request)
    if len(messages):
        values["me:messages"] = render_to_string("_messages.html", {"messages": messages})
    if more:
        values.update(more)
    pieces = list(parts)
    pieces[1::2] = [values[slot] for slot in parts[1::2]]
    return "".join(pieces)
