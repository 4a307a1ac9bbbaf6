"""The admin desk for purchases and tracks: lists, filters, search, the refund action."""

import pytest
from django.test import Client

from purchases.models import Purchase
from tests.factories import UserFactory
from tests.purchases_helpers import published_track

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_admin_lists_filters_and_searches_purchases_and_tracks(admin_client):
    fan = UserFactory(email="finder@example.com")
    track = published_track(UserFactory(), price=1, title="Findable")
    client = Client()
    client.force_login(fan)
    client.post(f"/api/tracks/{track.pk}/purchase")

    for query in ("", "?status__exact=completed", "?payment_method__exact=credits", "?q=finder"):
        page = admin_client.get(f"/admin/purchases/purchase/{query}").content.decode()
        assert "Findable" in page, query
    assert (
        "Findable" not in admin_client.get("/admin/purchases/purchase/?q=nobody").content.decode()
    )
    assert "Findable" in admin_client.get("/admin/tracks/track/?q=Findable").content.decode()
    purchase = Purchase.objects.get()
    assert admin_client.get(f"/admin/purchases/purchase/{purchase.pk}/change/").status_code == 200


def test_admin_refund_asks_for_confirmation_and_a_reason(admin_client):
    fan = UserFactory()
    track = published_track(UserFactory(), price=2)
    client = Client()
    client.force_login(fan)
    client.post(f"/api/tracks/{track.pk}/purchase")
    purchase = Purchase.objects.get()
    url = "/admin/purchases/purchase/"
    chosen = {"action": "refund", "_selected_action": [purchase.pk]}

    confirm = admin_client.post(url, chosen)
    assert confirm.status_code == 200 and "Yes, refund" in confirm.content.decode()
    purchase.refresh_from_db()
    assert purchase.status == "completed"  # nothing happens before confirming

    missing = admin_client.post(url, {**chosen, "confirm": "yes", "reason": " "})
    assert "A reason is required" in missing.content.decode()

    done = admin_client.post(url, {**chosen, "confirm": "yes", "reason": "Duplicate"}, follow=True)
    assert f"Purchase {purchase.pk} refunded." in done.content.decode()
    purchase.refresh_from_db()
    assert (purchase.status, purchase.refund_reason) == ("refunded", "Duplicate")
    assert client.get(f"/tracks/{track.pk}/download").status_code == 403
