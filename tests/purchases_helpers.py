"""Helpers for the purchase tests: tracks, paid credits, Stripe events, the books."""

from __future__ import annotations

import re
import secrets
import time

from django.core.files.base import ContentFile
from django.utils import timezone

from books.selectors import account_balances, artist_payable, book_violations
from payments import testmode
from payments.models import TestModeIntent
from payments.services import complete_from_intent
from tests import stripe_events
from tracks.models import Track

AUDIO = b"ID3" + b"\x00" * 64  # stands in for an MP3: downloads serve bytes as stored


def published_track(artist, *, price=2, title="Song", for_sale=True) -> Track:
    """A ready, published track with (stand-in) audio, as the studio leaves one."""
    track = Track.objects.create(
        creator=artist,
        title=title,
        prompt="p",
        genre="pop",
        mood="happy",
        duration_seconds=10,
        seed=1,
        status="ready",
        is_published=True,
        published_at=timezone.now(),
        charge_kind="credits",
        price_credits=price,
        for_sale=for_sale,
    )
    track.audio.save("track.mp3", ContentFile(AUDIO), save=False)
    track.preview.save("preview.mp3", ContentFile(AUDIO), save=False)
    track.save(update_fields=["audio", "preview"])
    return track


def paid_credits(user, *, package="starter", amount=1999) -> str:
    """Pay for a credit package as the webhook would: a lot with its cost basis, and
    its money in the books. Returns the PaymentIntent id."""
    intent = stripe_events.intent(user=user, package=package, amount=amount)
    complete_from_intent(intent, cause_ref="test")
    return intent["id"]


def books() -> dict:
    """Every account's balance (natural sign), after checking the books are sound."""
    assert book_violations() == []
    return account_balances()


def books_change(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def owed(artist) -> int:
    return artist_payable(artist)


def pay_test_intent(intent_id: str, card="4242424242424242") -> dict:
    """Pay a test-mode intent with a test card; return the event Stripe would send."""
    intent = testmode.confirm(intent_id, card)
    kind = (
        "payment_intent.succeeded"
        if intent.status == "succeeded"
        else "payment_intent.payment_failed"
    )
    return testmode.event(kind, testmode.intent_object(intent))


def intent_event(intent_id: str, kind: str, **changes) -> dict:
    obj = {**testmode.intent_object(TestModeIntent.objects.get(pk=intent_id)), **changes}
    return testmode.event(kind, obj)


def charge_event(intent_id: str, kind="charge.refunded") -> dict:
    return testmode.event(kind, testmode.charge_object(TestModeIntent.objects.get(pk=intent_id)))


def dispute_event(
    intent_id: str, kind: str, *, status="needs_response", dispute_id=None, amount=None
):
    intent = TestModeIntent.objects.get(pk=intent_id)
    dispute = {
        "id": dispute_id or f"dp_test_{secrets.token_hex(8)}",
        "object": "dispute",
        "amount": intent.amount if amount is None else amount,
        "currency": intent.currency,
        "charge": intent.charge_id,
        "payment_intent": intent.id,
        "reason": "fraudulent",
        "status": status,
        "livemode": False,
        "created": int(time.time()),
    }
    return testmode.event(kind, dispute)


def deliver(client, payload):
    response = stripe_events.deliver(client, payload)
    assert response.status_code == 200, response.content
    return response


def buttons(html):
    """The Buy button text of every track row, in page order."""
    found = re.findall(r'class="[^"]*buy-(?:button|state)[^"]*"[^>]*>([^<]+)<', html)
    return [text.strip() for text in found]
