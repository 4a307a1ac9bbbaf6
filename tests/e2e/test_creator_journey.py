"""Journey (a): a creator signs up, subscribes to Essential, generates, publishes, prices."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, unique_email
from tracks.models import Track

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_creator_signs_up_subscribes_generates_publishes_and_prices(journey):
    page = journey.person("creator")
    email = unique_email("creator")

    # Sign up.
    page.goto("/accounts/signup/")
    page.get_by_label("E-mail").fill(email)
    name = f"Nova Lights {uuid.uuid4().hex[:6]}"  # its own slug: pages are cached by slug
    page.get_by_label("Artist or display name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("link", name="5 credits")).to_be_visible()
    banner = page.get_by_role("status").filter(has_text="Test mode: no real payments")
    expect(banner).to_be_visible()
    journey.shot(page, "signed up")

    # Subscribe to Essential on the test card page (the succeeding card is the default).
    page.goto("/subscribe/")
    page.get_by_role("button", name="Subscribe for $5/month").click()
    expect(page.get_by_role("heading", name="Essential: $5.00 / month")).to_be_visible()
    expect(page.get_by_label("Visa ending 4242: succeeds")).to_be_checked()
    journey.shot(page, "test checkout")
    page.get_by_role("button", name="Subscribe", exact=True).click()
    # The page refreshes itself until the webhook (delivered by the worker) lands.
    expect(page.get_by_text("Status: Active")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("5 left")).to_be_visible()
    journey.shot(page, "subscribed")

    # Generate a short track: the progress bar runs until it is ready.
    page.goto("/studio/")
    page.get_by_label("Title").fill("Harbour Lights")
    # 45 s of audio takes the engine about a second: long enough to see the bar.
    page.get_by_label("Length", exact=True).fill("45")
    page.get_by_label("Describe it").fill("neon rain over the harbour")
    page.get_by_role("button", name="Generate").click()
    row = page.locator(".studio-track", has_text="Harbour Lights")
    expect(row.get_by_role("progressbar")).to_be_visible()
    journey.shot(page, "generating")
    # Ready: the studio reloads itself, the row offers the full audio and Publish.
    expect(row.get_by_role("button", name="Publish")).to_be_visible(timeout=60_000)
    expect(row.get_by_role("progressbar")).to_have_count(0)
    track = Track.objects.get(title="Harbour Lights")
    assert track.status == "ready" and track.charge_kind == "allowance"
    assert track.rights_plan  # made while subscribed: commercial rights recorded

    # The audio plays: the browser loads and decodes the full file we serve.
    audio = row.locator("audio")
    state = audio.evaluate(
        """async (audio) => {
            audio.muted = true;
            audio.preload = "auto";
            audio.load();
            await audio.play();
            await new Promise((done) => setTimeout(done, 300));
            return {ready: audio.readyState, time: audio.currentTime, error: audio.error};
        }"""
    )
    assert state["error"] is None and state["ready"] >= 2 and state["time"] > 0, state
    journey.shot(page, "ready")

    # Publish and price it.
    row.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("\u201cHarbour Lights\u201d is published.")).to_be_visible()
    row = page.locator(".studio-track", has_text="Harbour Lights")
    row.get_by_label("Price").fill("4")
    row.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved the price of \u201cHarbour Lights\u201d.")).to_be_visible()
    journey.shot(page, "published and priced")

    # The artist page shows it for sale, at that price, to everyone.
    fan = journey.person("visitor")
    track.refresh_from_db()
    fan.goto(track.creator.get_absolute_url())
    listing = fan.locator(".track-row", has_text="Harbour Lights")
    expect(listing.get_by_text("4 credits")).to_be_visible()
    expect(listing.get_by_role("link", name="Log in to buy")).to_be_visible()
    assert re.search(r"/artists/[\w-]+/$", fan.url)
    journey.shot(fan, "artist page")
