"""A completed purchase's receipt: the fee breakdown, on its page and by e-mail."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from core import mail
from purchases.models import PaymentMethod, Purchase


def dollars(cents: int | None) -> str:
    if cents is None:
        return "\u2014"
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"


def paid(purchase: Purchase) -> str:
    """What the fan paid, as they paid it."""
    if purchase.payment_method == PaymentMethod.CARD:
        return dollars(purchase.amount_cents)
    credits = purchase.price_credits
    return f"{credits} credit{'' if credits == 1 else 's'}"


def context(purchase: Purchase) -> dict:
    return {
        "purchase": purchase,
        "track": purchase.track,
        "artist": purchase.track.creator,
        "paid": paid(purchase),
        "promotional": purchase.paid_with_promotional_credits,
        "url": settings.SITE_URL.rstrip("/")
        + reverse("purchase_receipt", kwargs={"purchase_id": purchase.pk}),
    }


def send(purchase: Purchase) -> None:
    """E-mail the receipt (plain text and HTML); a receipt ignores the notices setting."""
    mail.send(
        to=purchase.fan.email,
        subject=f"Your receipt: \u201c{purchase.track.title}\u201d",
        template="purchases/receipt_email",
        context=context(purchase),
    )
