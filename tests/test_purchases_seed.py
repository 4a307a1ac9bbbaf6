"""The demo data of `make run` holds the issue's scenarios, end to end."""

import pytest
from django.core.management import call_command

from accounts.models import User
from credits.selectors import balance
from tests.purchases_helpers import deliver, pay_test_intent
from tracks.models import Track

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STRIPE_SECRET_KEY = ""


def test_the_seed_scenarios_hold(client):
    call_command("seed_demo")
    tracks = Track.objects.count()
    call_command("seed_demo")  # idempotent
    assert Track.objects.count() == tracks >= 6
    nova = User.objects.get(email="nova@soundstudio.test")
    published = Track.objects.filter(creator=nova, is_published=True, status="ready")
    assert published.count() >= 2 and all(t.audio and t.preview for t in published)
    two_credits = published.filter(price_credits=2).first()
    three_credits = published.filter(price_credits=3).first()

    # 5 credits, a 2-credit track -> 3 left and the track in purchases.
    frankie = User.objects.get(email="fan@soundstudio.test")
    assert balance(frankie) == 5
    client.force_login(frankie)
    assert "Buy for 2 credits" in client.get(nova.get_absolute_url()).content.decode()
    body = client.post(f"/api/tracks/{two_credits.pk}/purchase").json()
    assert body["status"] == "completed" and body["balance"] == 3 == balance(frankie)
    assert [p["track_id"] for p in client.get("/api/purchases").json()["purchases"]] == [
        two_credits.pk
    ]

    # 0 credits -> the card form, then the track after the webhook.
    casey = User.objects.get(email="casey@soundstudio.test")
    assert balance(casey) == 0
    client.force_login(casey)
    body = client.post(f"/api/tracks/{three_credits.pk}/purchase").json()
    assert body["status"] == "requires_payment" and body["amount_cents"] == 300
    assert "Pay $3.00" in client.get(body["checkout_url"]).content.decode()
    deliver(client, pay_test_intent(body["payment_intent_id"]))
    (purchase,) = client.get("/api/purchases").json()["purchases"]
    assert (purchase["track_id"], purchase["status"]) == (three_credits.pk, "completed")
    assert client.get(f"/tracks/{three_credits.pk}/download").status_code == 200

    # Buying your own track -> an error and no credits deducted.
    client.force_login(nova)
    before = balance(nova)
    response = client.post(f"/api/tracks/{two_credits.pk}/purchase")
    assert response.status_code == 403 and response.json()["error"] == "own_track"
    assert balance(nova) == before
