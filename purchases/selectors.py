"""Reads of fan purchases: who owns what, collections, receipts, an artist's sales,
and what each Buy button offers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet

from credits.selectors import HeaderCredits, expiry_window
from purchases.models import LIVE, PaymentMethod, Purchase, PurchaseStatus
from purchases.pricing import card_price_cents
from tracks.models import Track

S = PurchaseStatus

# A completed purchase gives the full download; a disputed one is suspended.
IN_COLLECTION = (S.COMPLETED, S.DISPUTED)
# What an artist's sales list shows: every purchase that was paid.
SOLD = (S.COMPLETED, S.DISPUTED, S.REFUNDED)


def track_to_buy(track_id: int) -> Track | None:
    """A track with what Buy needs: its artist and the artist's payable account (one
    query, so the sale's posting needs no lookup of its own)."""
    return (
        Track.objects.select_related("creator", "creator__payable_account")
        .filter(pk=track_id)
        .first()
    )


def owns(user, track) -> bool:
    """Whether the user bought the track and may download it (checked on every download)."""
    if not user.is_authenticated:
        return False
    return Purchase.objects.filter(fan_id=user.pk, track_id=track.pk, status=S.COMPLETED).exists()


def in_collection(user, track) -> bool:
    """Bought, even if a dispute suspends the download for now."""
    if not user.is_authenticated:
        return False
    return Purchase.objects.filter(
        fan_id=user.pk, track_id=track.pk, status__in=IN_COLLECTION
    ).exists()


def track_has_buyers(track) -> bool:
    """Whether a fan owns the track or is paying for it right now."""
    return Purchase.objects.filter(LIVE, track_id=track.pk).exists()


def track_has_purchases(track) -> bool:
    """Any purchase at all, refunded or abandoned ones included: money history."""
    return Purchase.objects.filter(track_id=track.pk).exists()


def fan_purchases(fan) -> QuerySet[Purchase]:
    """The fan's own purchases, newest first."""
    return Purchase.objects.filter(fan_id=fan.pk).order_by("-created_at", "-id")


def fan_purchase(fan, purchase_id: int) -> Purchase | None:
    return (
        Purchase.objects.select_related("track__creator")
        .filter(fan_id=fan.pk, pk=purchase_id)
        .first()
    )


def collection(fan) -> QuerySet[Purchase]:
    """The fan's bought tracks, newest first, with their artists."""
    return (
        Purchase.objects.filter(fan_id=fan.pk, status__in=IN_COLLECTION)
        .select_related("track__creator")
        .order_by("-completed_at", "-id")
    )


def receipt(user, purchase_id: int) -> Purchase | None:
    """A paid purchase's receipt, for its fan (or staff who may view purchases: being
    staff alone is not enough to read a fan's receipt)."""
    purchases = Purchase.objects.select_related("track__creator", "fan", "payment").filter(
        pk=purchase_id, status__in=SOLD
    )
    if not user.has_perm("purchases.view_purchase"):
        purchases = purchases.filter(fan_id=user.pk)
    return purchases.first()


def sales(artist) -> QuerySet[Purchase]:
    """Who bought the artist's tracks, newest first."""
    return (
        Purchase.objects.filter(track__creator_id=artist.pk, status__in=SOLD)
        .select_related("track", "fan")
        .order_by("-completed_at", "-id")
    )


# --- Buy buttons -------------------------------------------------------------------


@dataclass(frozen=True)
class BuyButton:
    """What pressing Buy on one track would do for one visitor."""

    track_id: int
    kind: str  # login, own, owned, on_hold, resume, credits, card, not_for_sale
    price_credits: int
    amount_cents: int

    @property
    def label(self) -> str:
        dollars = f"${self.amount_cents / 100:,.2f}"
        credits = f"{self.price_credits} credit{'' if self.price_credits == 1 else 's'}"
        return {
            "login": "Log in to buy",
            "own": "Your track",
            "owned": "In your collection",
            "on_hold": "On hold: payment disputed",
            "resume": f"Finish paying {dollars}",
            "credits": f"Buy for {credits}",
            "card": f"Buy for {dollars}",
            "not_for_sale": "Not for sale",
        }[self.kind]

    @property
    def can_press(self) -> bool:
        return self.kind in ("resume", "credits", "card")


@dataclass(frozen=True)
class Offer:
    """A track as the button needs it: id, price, and whether it is for sale."""

    track_id: int
    price_credits: int
    for_sale: bool


# purchases.models.LIVE as SQL, for the artist page's hot path: building the ORM query
# cost more than the rest of the page's buttons. A test holds the two equal.
LIVE_SQL = "(status IN ('pending', 'completed', 'disputed') OR (status = 'failed' AND flag = ''))"


def live_statuses(fan_id: int, track_ids: list[int]) -> dict[int, str]:
    """{track_id: status} of the fan's live purchases among the tracks: one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT track_id, status FROM {Purchase._meta.db_table}"  # noqa: S608 - constants only
            f" WHERE fan_id = %s AND track_id = ANY(%s) AND {LIVE_SQL}",
            [fan_id, track_ids],
        )
        return dict(cursor.fetchall())


# The header's credit figures and the fan's live purchases among some tracks
# (%(tracks)s), as one row: what a signed-in page of Buy buttons needs. The fan is
# `me`, the user's row (accounts.backends.read_with_user). The function (migration
# 0002) is HEADER_CREDITS_SQL beside LIVE_SQL, with its plan kept per connection;
# tests hold the two equal.
FAN_PAGE_STATE_SQL = (
    "SELECT * FROM purchases_fan_page_state(me.id, %(now)s, %(soon)s, %(tracks)s::bigint[])"
)


def fan_page_state_params(track_ids: list[int]) -> dict:
    """FAN_PAGE_STATE_SQL's parameters. The track ids go as an array's text, which
    PostgreSQL reads faster than psycopg writes a list of ints."""
    ids = ",".join(str(int(track_id)) for track_id in track_ids)
    return {**expiry_window(), "tracks": f"{{{ids}}}"}


def fan_page_state_of(row) -> tuple[HeaderCredits, dict[int, str]]:
    """A FAN_PAGE_STATE_SQL row (and perhaps more columns after it) as
    (credits, {track_id: status})."""
    balance, expiring, expiring_at, ids, statuses = row[:5]
    return HeaderCredits(balance, expiring, expiring_at), dict(
        zip(ids or (), statuses or (), strict=True)
    )


def fan_page_state(user, track_ids: list[int]) -> tuple[HeaderCredits, dict[int, str]]:
    """The header's credit figures and {track_id: status} of the fan's live purchases
    among the tracks, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT x.* FROM (SELECT %(fan)s::bigint AS id) me, LATERAL ({FAN_PAGE_STATE_SQL}) x",  # noqa: S608 - constants only
            {**fan_page_state_params(track_ids), "fan": user.pk},
        )
        return fan_page_state_of(cursor.fetchone())


def buy_buttons(
    user,
    offers: Iterable[Offer],
    *,
    artist_id: int,
    balance: int | None,
    states: dict[int, str] | None = None,
):
    """The Buy button of each offered track (all by `artist_id`), in one query at most.

    `balance` is the visitor's credit balance (None for a visitor who is not signed in);
    `states`, the fan's live purchases among the tracks if already read
    (fan_page_state), else they are read here.
    """
    offers = list(offers)
    signed_in = user.is_authenticated
    own = signed_in and user.pk == artist_id
    if states is None:
        states = {}
        if signed_in and not own and offers:
            states = live_statuses(user.pk, [o.track_id for o in offers])
    elif own:
        states = {}
    buttons = {}
    for offer in offers:
        kind = button_kind(
            offer, states.get(offer.track_id), signed_in=signed_in, own=own, balance=balance
        )
        buttons[offer.track_id] = BuyButton(
            offer.track_id, kind, offer.price_credits, card_price_cents(offer.price_credits)
        )
    return buttons


def button_kind(
    offer: Offer, status: str | None, *, signed_in: bool, own: bool, balance: int | None
) -> str:
    """What Buy does on the offered track for this visitor: BuyButton.kind. `status`
    is the visitor's live purchase of it, if any; `own`, whether it is their track."""
    if not signed_in:
        return "login" if offer.for_sale else "not_for_sale"
    if own:
        return "own"
    if status == S.COMPLETED:
        return "owned"
    if status == S.DISPUTED:
        return "on_hold"
    if status in (S.PENDING, S.FAILED):
        return "resume"
    if not offer.for_sale:
        return "not_for_sale"
    if balance is not None and balance >= offer.price_credits:
        return "credits"
    return "card"


def method_label(purchase: Purchase) -> str:
    """How a sale was paid, as the artist's sales list says it."""
    if purchase.payment_method == PaymentMethod.CARD:
        return "card"
    if purchase.value_cents == 0:
        return "paid with promotional credits"
    return f"{purchase.price_credits} credit{'' if purchase.price_credits == 1 else 's'}"


def top_tracks(*, start, end, limit: int = 5) -> list[tuple[str, str, int, int]]:
    """The tracks that sold best in [start, end): (title, artist, sales, value in cents)."""
    from django.db.models import Count, Sum

    rows = (
        Purchase.objects.filter(completed_at__gte=start, completed_at__lt=end, status__in=SOLD)
        .values("track__title", "track__creator__display_name")
        .annotate(sold=Count("id"), value=Sum("value_cents"))
        .order_by("-value", "-sold", "track__title")[:limit]
    )
    return [
        (r["track__title"], r["track__creator__display_name"], r["sold"], r["value"] or 0)
        for r in rows
    ]
