"""The Buy button of a track, as HTML, for one visitor.

Artist pages cache their track list once for everyone (tracks.catalog), so the list
carries a placeholder per track, `<!--buy:<id>:<price>:<for sale 1/0>-->`, and
`fill` swaps each for the visitor's own button: one query for the whole page. The
track page renders its one button with `render`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property, lru_cache
from html import escape
from urllib.parse import quote

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from purchases.pricing import card_price_cents
from purchases.selectors import BuyButton, Offer, button_kind, buy_buttons

PLACEHOLDER = re.compile(r"<!--buy:(\d+):(\d+):([01])-->")


def placeholder(track) -> str:
    return f"<!--{slot(track.id, track.price_credits, track.for_sale)}-->"


def slot(track_id: int, price_credits: int, for_sale: bool) -> str:
    """A Buy placeholder's name, as core.shell.compile finds it between `<!--` `-->`."""
    return f"buy:{track_id}:{price_credits}:{int(for_sale)}"


class _Renderer:
    """Renders buttons for one page: its URLs are reversed once, not once per button,
    and only if a button needs them.

    Plain string formatting with the standard library's escape: a page renders twenty
    buttons, and Django's format_html costs more than the rest of filling them.
    """

    def __init__(self, next_url: str):
        self.next_url = next_url

    @cached_property
    def login(self) -> str:
        return (
            '<a class="button button-small button-ghost buy-button" href="'
            f'{escape(reverse("login"))}?next={escape(quote(self.next_url))}">'
        )

    @cached_property
    def owned(self) -> str:
        return (
            '<a class="button button-small button-ghost buy-button is-owned" href="'
            f'{escape(reverse("collection"))}">'
        )

    def __call__(self, button: BuyButton) -> str:
        if button.kind == "login":
            return f"{self.login}{escape(button.label)}</a>"
        if button.kind == "owned":
            return f"{self.owned}{escape(button.label)}</a>"
        return _plain(button)


@lru_cache(maxsize=4096)
def _plain(button: BuyButton) -> str:
    """A button without a URL in it: the same HTML for the same button, every time."""
    label = escape(button.label)
    if button.can_press:
        return (
            f'<button type="button" class="button button-small buy-button"'
            f' data-buy="{button.kind}" data-track-id="{button.track_id:d}"'
            f' data-price-credits="{button.price_credits:d}"'
            f' data-amount-cents="{button.amount_cents:d}">{label}</button>'
        )
    return f'<span class="buy-state buy-{escape(button.kind)}">{label}</span>'


def render(button: BuyButton, *, next_url: str = "") -> SafeString:
    return mark_safe(_Renderer(next_url)(button))  # noqa: S308 - every value escaped above


def for_track(user, track, *, balance: int | None, next_url: str) -> SafeString:
    offer = Offer(track.pk, track.price_credits, track.for_sale)
    button = buy_buttons(user, [offer], artist_id=track.creator_id, balance=balance)[track.pk]
    return render(button, next_url=next_url)


def offers_in(html: str) -> list[Offer]:
    """The tracks whose Buy placeholders the HTML holds, in page order."""
    return [
        Offer(int(track_id), int(price), for_sale == "1")
        for track_id, price, for_sale in PLACEHOLDER.findall(html)
    ]


def fill(
    html: str,
    user,
    *,
    artist_id: int,
    balance: int | None,
    next_url: str,
    offers: Sequence[Offer] | None = None,
    states: dict[int, str] | None = None,
) -> str:
    """Replace every placeholder in a cached track list with this visitor's button.

    `offers` (offers_in) and the fan's live purchases among them (`states`), when the
    caller has read them already; else they are read here.
    """
    if offers is None:
        offers = offers_in(html)
    buttons = buy_buttons(user, offers, artist_id=artist_id, balance=balance, states=states)
    render_one = _Renderer(next_url)
    return PLACEHOLDER.sub(lambda match: render_one(buttons[int(match.group(1))]), html)


# Every kind of button a signed-in visitor can see ("login" is for the others).
SIGNED_IN_KINDS = ("own", "owned", "on_hold", "resume", "credits", "card", "not_for_sale")


def drawn(offers: Sequence[Offer]) -> tuple[tuple[str, dict[str, str]], ...]:
    """Each offer's slot and its button's HTML in every kind a signed-in visitor can
    see: drawn once with a page's shell, so a view only picks one per track."""
    render_one = _Renderer("")
    return tuple(
        (
            slot(o.track_id, o.price_credits, o.for_sale),
            {
                kind: render_one(
                    BuyButton(o.track_id, kind, o.price_credits, card_price_cents(o.price_credits))
                )
                for kind in SIGNED_IN_KINDS
            },
        )
        for o in offers
    )


def signed_in_slots(
    user,
    offers: Sequence[Offer],
    drawn_buttons: tuple[tuple[str, dict[str, str]], ...],
    *,
    artist_id: int,
    balance: int,
    states: dict[int, str],
) -> dict[str, str]:
    """{slot: this signed-in visitor's button} for a compiled shell (core.shell.fill),
    by the same rule as buy_buttons."""
    own = user.pk == artist_id
    chosen = {}
    for offer, (name, html) in zip(offers, drawn_buttons, strict=True):
        status = None if own else states.get(offer.track_id)
        chosen[name] = html[button_kind(offer, status, signed_in=True, own=own, balance=balance)]
    return chosen
