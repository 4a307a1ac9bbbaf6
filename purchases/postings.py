"""What fan purchases post to the books (DESIGN.md, "Artist earnings and the books").

Lines are (account, cents): positive debits, negative credits; each posting visibly
sums to zero. With V the purchase's value, P = SoundStudio's fee
(PLATFORM_FEE_PERCENT of V, half up), F the card fee and E = V - P - F the artist's
earnings:

| event                        | lines                                                         |
|------------------------------|---------------------------------------------------------------|
| paid with credits            | deferred_revenue +V, revenue_platform_fees -P, artist -E      |
| paid by card (amount A = V)  | cash +A, revenue_platform_fees -P, artist -E, processor_fees -F |
| credit purchase refunded     | artist +E, revenue_platform_fees +P, deferred_revenue -R,     |
|                              | refunds +(R - V)   (R = cost basis given back to the lots)    |
| card refund of cash r        | cash -r, revenue_platform_fees +p, artist +e, refunds +(r-p-e)|
| dispute opened for d         | as a card refund of d                                         |
| dispute closed               | the exact reverse of its opening                              |

For a credit purchase V is the cost basis the spend released from the fan's lots
(0 for credits from a free gift: nothing posts, and the sale is "paid with
promotional credits"), and F = 0.

The card fee is borne by the artist. Payments books it when Stripe reports it
(processor_fees +F, cash -F); the card posting credits processor_fees by the same F,
recovering it from the artist's share, so a sale leaves cash +(A - F),
revenue_platform_fees -P and the artist -(A - P - F), with processor_fees back at 0.
Stripe keeps the fee when it refunds, so a refund cannot recover it: the part of the
cash returned that is not the artist's or our fee (the fee's share) goes to
`refunds`, which admins see.

Card refunds and disputes reverse pro rata. After reversals totalling T of the
amount A, floor(P x T / A) of the fee and floor(E x T / A) of the earnings are
reversed in all; each reversal posts the difference that makes, so any sequence of
partial refunds (and disputes opened and closed) sums to exactly the full reversal
when T reaches A.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from books import services as books
from books.models import Account, AccountCode, JournalCause
from books.money import percent_of


@dataclass(frozen=True)
class Split:
    """Where a purchase's value goes, in cents: value = card_fee + platform_fee + artist."""

    value: int
    card_fee: int
    platform_fee: int
    artist: int


def split_of(*, value_cents: int, card_fee_cents: int | None = 0) -> Split:
    """SoundStudio's fee is a percentage of the value; the artist bears the card fee."""
    card_fee = card_fee_cents or 0
    platform_fee = percent_of(value_cents, settings.PLATFORM_FEE_PERCENT)
    return Split(
        value=value_cents,
        card_fee=card_fee,
        platform_fee=platform_fee,
        artist=value_cents - platform_fee - card_fee,
    )


def _artist(purchase):
    """The artist's payable account: loaded with the track when the caller asked for it
    (purchases.selectors.track_to_buy), else looked up (or made) by the books."""
    artist = purchase.track.creator
    try:
        return artist.payable_account
    except Account.DoesNotExist:  # a first sale: no account yet
        return books.artist_account(artist)


def _memo(purchase) -> str:
    return f"Purchase {purchase.pk}: \u201c{purchase.track.title}\u201d"


def paid_with_credits(*, purchase, entry, cause_ref: str = ""):
    """The credits' released cost moves from deferred revenue to the artist and us."""
    split = split_of(value_cents=purchase.value_cents)
    return books.post(
        key=f"books:purchase:{purchase.pk}:credits",
        event="track_purchase_credits",
        lines=[
            (AccountCode.DEFERRED_REVENUE, split.value),
            (AccountCode.REVENUE_PLATFORM_FEES, -split.platform_fee),
            (_artist(purchase), -split.artist),
        ],
        cause=JournalCause.LEDGER,
        cause_ref=cause_ref,
        memo=_memo(purchase),
        ledger_entry=entry,
    )


def paid_by_card(*, purchase, intent_id: str, cause_ref: str):
    """The card amount in: our fee, the artist's earnings, and the card fee recovered."""
    amount = purchase.value_cents
    return books.post(
        key=f"books:paid:{intent_id}",
        event="track_purchase_card",
        lines=[
            (AccountCode.CASH, amount),
            (AccountCode.REVENUE_PLATFORM_FEES, -purchase.platform_fee_cents),
            (_artist(purchase), -purchase.artist_earnings_cents),
            (AccountCode.PROCESSOR_FEES, -purchase.card_fee_cents),
        ],
        cause=JournalCause.STRIPE,
        cause_ref=cause_ref,
        memo=_memo(purchase),
        payment=purchase.payment,
    )


def credits_refunded(*, purchase, returned_cents: int, entry, staff_user, reason: str):
    """Reverse a credit purchase: the cost basis goes back to the fan's lots."""
    return books.post(
        key=f"books:purchase:{purchase.pk}:credits-refund",
        event="track_purchase_credits_refunded",
        lines=[
            (_artist(purchase), purchase.artist_earnings_cents),
            (AccountCode.REVENUE_PLATFORM_FEES, purchase.platform_fee_cents),
            (AccountCode.DEFERRED_REVENUE, -returned_cents),
            (AccountCode.REFUNDS, returned_cents - purchase.value_cents),
        ],
        cause=JournalCause.STAFF,
        cause_ref=f"purchase:{purchase.pk}",
        staff_user=staff_user,
        reason=reason,
        memo=_memo(purchase),
        ledger_entry=entry,
    )


def _reversed_through(purchase, total: int) -> tuple[int, int]:
    """(platform fee, earnings) reversed in all once `total` of the amount is reversed."""
    amount = purchase.value_cents
    return (
        purchase.platform_fee_cents * total // amount,
        purchase.artist_earnings_cents * total // amount,
    )


def card_reversal(
    *, purchase, key: str, event: str, from_total: int, to_total: int, cause_ref: str
):
    """Move a card purchase from `from_total` to `to_total` cents reversed.

    A refund or an opened dispute reverses more (to_total > from_total); a dispute
    closed undoes its opening (to_total < from_total) with the same lines negated.
    """
    fee_before, earnings_before = _reversed_through(purchase, from_total)
    fee_after, earnings_after = _reversed_through(purchase, to_total)
    cash = to_total - from_total
    fee, earnings = fee_after - fee_before, earnings_after - earnings_before
    return books.post(
        key=key,
        event=event,
        lines=[
            (AccountCode.CASH, -cash),
            (AccountCode.REVENUE_PLATFORM_FEES, fee),
            (_artist(purchase), earnings),
            (AccountCode.REFUNDS, cash - fee - earnings),
        ],
        cause=JournalCause.STRIPE,
        cause_ref=cause_ref,
        memo=_memo(purchase),
        payment=purchase.payment,
    )
