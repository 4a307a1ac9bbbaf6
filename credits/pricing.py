"""What everything costs: the one place prices are defined (DESIGN.md section 1).

Generation charges `TRACK_GENERATION_CREDITS`, a track's card price is its credits x
`CREDIT_PRICE_CENTS`, and `GET /api/credits/costs` shows both from here. Credit
packages are priced in the database (`CreditPackage`, editable in admin).
"""

TRACK_GENERATION_CREDITS = 1  # 1 credit generates 1 track
CREDIT_PRICE_CENTS = 100  # a credit's card price: $1.00
TRACK_MINIMUM_PRICE_CREDITS = 1  # an artist prices a track at 1 credit or more


def card_price_cents(price_credits: int) -> int:
    """The card price of `price_credits` credits, in cents."""
    return price_credits * CREDIT_PRICE_CENTS


def costs() -> dict[str, int]:
    """Every price in credits, by what it buys."""
    return {
        "track_generation": TRACK_GENERATION_CREDITS,
        "track_purchase_minimum": TRACK_MINIMUM_PRICE_CREDITS,
    }
