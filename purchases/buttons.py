"""The Buy button of a track, as HTML, for one visitor.

Artist pages cache their track list once for everyone (tracks.catalog), so the list
carries a placeholder per track, `<!--buy:<id>:<price>:<for sale 1/0>-->`, and
`fill` swaps each for the visitor's own button: one query for the whole page. The
track page renders its one button with `render`.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from django.urls import reverse
from django.utils.html import format_html

from purchases.selectors import BuyButton, Offer, buy_buttons

PLACEHOLDER = re.compile(r"<!--buy:(\d+):(\d+):([01])-->")


def placeholder(track) -> str:
    return f"<!--buy:{track.id}:{track.price_credits}:{int(track.for_sale)}-->"


def render(button: BuyButton, *, next_url: str = "") -> str:
    if button.kind == "login":
        return format_html(
            '<a class="button button-small button-ghost buy-button" href="{}?next={}">{}</a>',
            reverse("login"),
            quote(next_url),
            button.label,
        )
    if button.kind == "owned":
        return format_html(
            '<a class="button button-small button-ghost buy-button is-owned" href="{}">{}</a>',
            reverse("collection"),
            button.label,
        )
    if button.can_press:
        return format_html(
            '<button type="button" class="button button-small buy-button" data-buy="{}"'
            ' data-track-id="{}" data-price-credits="{}" data-amount-cents="{}">{}</button>',
            button.kind,
            button.track_id,
            button.price_credits,
            button.amount_cents,
            button.label,
        )
    return format_html('<span class="buy-state buy-{}">{}</span>', button.kind, button.label)


def for_track(user, track, *, balance: int | None, next_url: str) -> str:
    offer = Offer(track.pk, track.price_credits, track.for_sale)
    button = buy_buttons(user, [offer], artist_id=track.creator_id, balance=balance)[track.pk]
    return render(button, next_url=next_url)


def fill(html: str, user, *, artist_id: int, balance: int | None, next_url: str) -> str:
    """Replace every placeholder in a cached track list with this visitor's button."""
    offers = [
        Offer(int(track_id), int(price), for_sale == "1")
        for track_id, price, for_sale in PLACEHOLDER.findall(html)
    ]
    buttons = buy_buttons(user, offers, artist_id=artist_id, balance=balance)
    return PLACEHOLDER.sub(
        lambda match: render(buttons[int(match.group(1))], next_url=next_url), html
    )
