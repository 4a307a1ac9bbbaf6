"""Journeys (b) to (e): fans buy with credits and by card, a card is declined, an admin
refunds from the reconciliation desk."""

import uuid

import pytest
from django.test import Client
from playwright.sync_api import expect

from accounts.models import User
from books.selectors import account_balances
from credits.selectors import balance
from credits.services import spend
from payments.models import Payment
from purchases.models import Purchase
from tests.e2e.conftest import eventually, log_in
from tests.factories import UserFactory
from tests.purchases_helpers import AUDIO, pay_test_intent, published_track
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def low_tide(site):
    """A published track at 3 credits ($3.00), by an artist with a page (its files in
    the media folder the live site and the worker share)."""
    # A name of its own: cached artist pages are keyed by slug, and the flushed
    # database of the previous journey may have had an artist of the same name.
    artist = UserFactory(display_name=f"Tide Keeper {uuid.uuid4().hex[:6]}")
    return published_track(artist, price=3, title="Low Tide")


def _broke_fan():
    """A fan who has spent the sign-up credits: Buy goes to the card."""
    fan = UserFactory()
    spend(user=fan, amount=5, reason="test", idempotency_key=f"drain:{fan.pk}")
    return fan


def _start_card_purchase(journey, fan, track):
    """From the artist page to the test card page."""
    page = journey.person("fan")
    log_in(page, fan.email)
    page.goto(track.creator.get_absolute_url())
    row = page.locator(".track-row", has_text=track.title)
    expect(page.locator(".balance-pill")).to_have_text("0 credits")
    journey.shot(page, "artist page")
    row.get_by_role("button", name="Buy for $3.00").click()
    expect(page.get_by_role("heading", name="Pay $3.00")).to_be_visible()
    return page


def test_a_fan_with_credits_buys_on_the_artist_page_and_downloads(journey, low_tide):
    fan = UserFactory()  # 5 credits
    page = journey.person("fan")
    log_in(page, fan.email)
    page.goto(low_tide.creator.get_absolute_url())
    row = page.locator(".track-row", has_text="Low Tide")
    journey.shot(page, "artist page")

    row.get_by_role("button", name="Buy for 3 credits").click()
    expect(row.get_by_role("link", name="In your collection")).to_be_visible()
    expect(row.get_by_role("status")).to_contain_text("Bought. You have 2 credits left.")
    expect(page.locator(".balance-pill")).to_have_text("2 credits")
    journey.shot(page, "bought")
    page.reload()  # the server says so too
    expect(row.get_by_role("link", name="In your collection")).to_be_visible()

    page.get_by_role("link", name="Collection", exact=True).click()
    expect(page.get_by_role("heading", name="Your collection")).to_be_visible()
    owned = page.locator(".collection-row", has_text="Low Tide")
    journey.shot(page, "collection")
    with page.expect_download() as download_info:
        owned.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "Low Tide.mp3"
    with open(download.path(), "rb") as file:
        assert file.read() == AUDIO
    purchase = Purchase.objects.get(fan=fan, track=low_tide)
    assert (purchase.status, purchase.payment_method) == ("completed", "credits")
    assert balance(fan) == 2


def test_a_fan_without_credits_pays_by_card_and_sees_it_confirmed(journey, low_tide):
    fan = _broke_fan()
    page = _start_card_purchase(journey, fan, low_tide)
    expect(page.get_by_label("Visa ending 4242: succeeds")).to_be_checked()
    journey.shot(page, "test card page")

    page.get_by_role("button", name="Pay $3.00").click()
    # The collection waits for the webhook the worker delivers, then says so.
    notice = page.locator("#confirming")
    expect(notice).to_contain_text("Bought.", timeout=30_000)
    expect(notice).to_contain_text("Low Tide")
    owned = page.locator(".collection-row", has_text="Low Tide")
    expect(owned.get_by_role("link", name="Download")).to_be_visible()
    journey.shot(page, "confirmed")

    purchase = Purchase.objects.get(fan=fan, track=low_tide)
    assert (purchase.status, purchase.payment_method) == ("completed", "card")
    assert purchase.payment.amount_cents == 300


def test_a_declined_card_shows_its_message_and_charges_nothing(journey, low_tide):
    fan = _broke_fan()
    cash_before = account_balances()["cash"]
    page = _start_card_purchase(journey, fan, low_tide)

    page.get_by_label("Visa ending 0002: declined").check()
    page.get_by_role("button", name="Pay $3.00").click()
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    journey.shot(page, "declined")

    payment = Payment.objects.get(user=fan)
    # The failure's webhook arrives from the worker; once it is applied, nothing was paid.
    eventually(
        lambda: WebhookEvent.objects.filter(
            type="payment_intent.payment_failed",
            payload__data__object__id=payment.stripe_payment_intent_id,
            status="processed",
        ).exists(),
        what="the payment_failed webhook",
    )
    assert not Purchase.objects.filter(fan=fan, status="completed").exists()
    assert account_balances()["cash"] == cash_before  # no cash line in the journal
    assert balance(fan) == 0

    # The artist page offers to finish paying (the same PaymentIntent), not a new one.
    page.goto(low_tide.creator.get_absolute_url())
    row = page.locator(".track-row", has_text="Low Tide")
    expect(row.get_by_role("button", name="Finish paying $3.00")).to_be_visible()
    journey.shot(page, "finish paying offered")


def test_an_admin_refunds_on_the_reconciliation_desk_and_the_fan_loses_the_download(
    journey, low_tide
):
    fan = _broke_fan()
    # The fan bought the track by card (the worker delivers the webhook).
    fan_client = Client()
    fan_client.force_login(fan)
    body = fan_client.post(f"/api/tracks/{low_tide.pk}/purchase").json()
    pay_test_intent(body["payment_intent_id"])
    purchase = eventually(
        lambda: Purchase.objects.filter(pk=body["purchase_id"], status="completed").first(),
        what="the card purchase to complete",
    )
    download = f"/tracks/{low_tide.pk}/download"
    fan_page = journey.person("fan")
    log_in(fan_page, fan.email)
    assert fan_page.request.get(download).status == 200

    staff = UserFactory(display_name="Desk")
    User.objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
    page = journey.person("admin")
    log_in(page, staff.email, path="/admin/login/")
    page.goto("/admin/reconciliation/")
    row = page.locator("#result_list tbody tr", has_text=fan.email)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("$3.00")
    journey.shot(page, "desk")

    # It matches Stripe, so no flag: the row links to its purchase, refunded from there.
    row.get_by_role("link", name="Purchase", exact=True).click()
    purchases = page.locator("#result_list tbody tr")
    expect(purchases).to_have_count(1)
    expect(purchases).to_contain_text("Low Tide")
    purchases.locator("input.action-select").check()
    page.locator("select[name=action]").select_option("refund")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_text(f"Purchase {purchase.pk}: \u201cLow Tide\u201d")).to_be_visible()
    page.get_by_label("Reason").fill("Fan asked: bought by mistake")
    journey.shot(page, "refund confirmation")
    page.get_by_role("button", name="Yes, refund").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Purchase {purchase.pk}")
    journey.shot(page, "refunded")

    eventually(
        lambda: Purchase.objects.filter(pk=purchase.pk, status="refunded").exists(),
        what="the purchase to be refunded",
    )
    assert fan_page.request.get(download).status == 403
    fan_page.goto("/collection/")
    expect(fan_page.locator(".collection-row", has_text="Low Tide")).to_have_count(0)
    fan_page.goto(download)
    journey.shot(fan_page, "download refused")
