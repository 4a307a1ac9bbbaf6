"""The card price of a track (DESIGN.md, "Fan purchases"): its price in credits x $1.00."""

CARD_CENTS_PER_CREDIT = 100


def card_price_cents(price_credits: int) -> int:
    return price_credits * CARD_CENTS_PER_CREDIT
