"""The card price of a track (DESIGN.md, "Fan purchases"): its price in credits x $1.00,
from the one place prices are defined (credits.pricing)."""

from credits.pricing import CREDIT_PRICE_CENTS as CARD_CENTS_PER_CREDIT
from credits.pricing import card_price_cents

__all__ = ["CARD_CENTS_PER_CREDIT", "card_price_cents"]
