"""A completed purchase's receipt: the fee breakdown, on its page and by e-mail."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

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
    body = render_to_string("purchases/receipt_email.txt", context(purchase))
    send_mail(
        subject=f"Your receipt: \u201c{purchase.track.title}\u201d",
        message=body,
        from_email=None,
        recipient_list=[purchase.fan.email],
    )
