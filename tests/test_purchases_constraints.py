"""PostgreSQL's own guards on purchases, tested with rows written directly: whatever
the code does, the database refuses a second live purchase or a split that does not
add up."""

import pytest
from django.db import IntegrityError, transaction

from credits.services import spend
from purchases.models import Purchase
from tests.factories import UserFactory
from tracks.models import Track

pytestmark = pytest.mark.django_db


def published_track(artist, **fields):
    return Track.objects.create(
        creator=artist,
        title=fields.pop("title", "Song"),
        prompt="p",
        genre="pop",
        mood="happy",
        duration_seconds=10,
        seed=1,
        status="ready",
        is_published=True,
        charge_kind="credits",
        price_credits=fields.pop("price_credits", 2),
        **fields,
    )


def row(fan, track, **fields):
    values = {
        "fan": fan,
        "track": track,
        "status": "pending",
        "payment_method": "card",
        "price_credits": 2,
        "amount_cents": 200,
        **fields,
    }
    return Purchase.objects.create(**values)


def refused(**fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        row(**fields)


@pytest.fixture
def fan_and_track():
    return UserFactory(), published_track(UserFactory())


def test_one_live_purchase_per_fan_and_track(fan_and_track):
    fan, track = fan_and_track
    row(fan, track)
    for status in ("pending", "completed", "disputed", "failed"):
        entry = spend(user=fan, amount=1, reason="t", idempotency_key=f"t:{status}")
        extra = {"payment_method": "credits", "ledger_entry": entry}
        refused(fan=fan, track=track, status=status, **extra)
    # Another fan, or another track, is another purchase.
    row(UserFactory(), track)
    row(fan, published_track(track.creator))


@pytest.mark.parametrize("status", ["canceled", "refunded"])
def test_finished_purchases_do_not_block_buying_again(fan_and_track, status):
    fan, track = fan_and_track
    entry = spend(user=fan, amount=2, reason="t", idempotency_key="t")
    row(fan, track, status=status, payment_method="credits", ledger_entry=entry)
    row(fan, track)  # a new pending one is fine


def test_a_failed_purchase_flagged_for_admins_is_not_live(fan_and_track):
    fan, track = fan_and_track
    row(fan, track, status="failed", flag="amount_mismatch")
    row(fan, track)
    refused(fan=fan, track=track, status="failed")  # an unflagged failure may still succeed


def test_a_flag_only_goes_with_a_failure(fan_and_track):
    fan, track = fan_and_track
    refused(fan=fan, track=track, status="pending", flag="amount_mismatch")


def test_a_completed_purchase_names_what_paid_for_it(fan_and_track):
    fan, track = fan_and_track
    refused(fan=fan, track=track, status="completed", payment_method="credits")
    entry = spend(user=fan, amount=2, reason="t", idempotency_key="t")
    refused(fan=fan, track=track, status="pending", payment_method="card", ledger_entry=entry)


def test_the_split_adds_up(fan_and_track):
    fan, track = fan_and_track
    entry = spend(user=fan, amount=2, reason="t", idempotency_key="t")
    paid = {"status": "completed", "payment_method": "credits", "ledger_entry": entry}
    refused(
        fan=fan,
        track=track,
        value_cents=200,
        card_fee_cents=0,
        platform_fee_cents=30,
        artist_earnings_cents=171,
        **paid,
    )
    row(
        fan,
        track,
        value_cents=200,
        card_fee_cents=0,
        platform_fee_cents=30,
        artist_earnings_cents=170,
        **paid,
    )


def test_a_refund_never_exceeds_the_amount(fan_and_track):
    fan, track = fan_and_track
    refused(fan=fan, track=track, refunded_cents=201)


def test_a_track_with_purchases_cannot_be_deleted_even_behind_the_services_back(
    fan_and_track,
):
    from django.db.models import ProtectedError

    fan, track = fan_and_track
    row(fan, track, status="canceled")
    with pytest.raises(ProtectedError):
        track.delete()
