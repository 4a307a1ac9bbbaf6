"""What a new user trips over (issue 12): help texts, old artist URLs, the
subscription confirmation, generation errors, canceled payments, the home page's
artists and the favicon."""

import json

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts import services as account_services
from payments import services as payment_services
from payments import testmode
from payments.models import Payment, PaymentStatus
from purchases.models import Purchase
from tests import stripe_events
from tests.factories import UserFactory
from tests.purchases_helpers import published_track
from tracks.models import Track

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def test_gateway(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False


# --- 1. Help texts with <placeholders> ----------------------------------------------


def test_profile_page_shows_the_artist_address_help_text_whole(client, user):
    client.force_login(user)

    page = client.get("/accounts/profile/").content.decode()

    assert "/artists/<slug>/" not in page  # a tag to the browser: it shows "/artists//"
    assert f"Your artist page lives at /artists/{user.slug}/." in page


def test_admin_user_page_shows_the_artist_address_help_text_whole(client, user):
    admin = UserFactory()
    admin.is_staff = admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    client.force_login(admin)

    page = client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()

    assert "/artists/<slug>/" not in page  # a tag to the browser: it shows "/artists//"
    assert "/artists/your-address/" in page


def test_a_slug_with_an_underscore_is_a_format_error_not_taken(client, user):
    client.force_login(user)

    response = client.post(
        "/accounts/profile/", {"display_name": user.display_name, "slug": "my_band"}
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "taken" not in page
    assert "lowercase letters, digits and hyphens" in page


# --- 2. Old artist URLs redirect ------------------------------------------------------


def change_slug(user, slug):
    return account_services.update_profile(user=user, display_name=user.display_name, slug=slug)


def test_old_artist_url_redirects_permanently_to_the_new_one(client, user):
    old = user.slug
    change_slug(user, "brand-new-name")

    response = client.get(f"/artists/{old}/?page=2")

    assert response.status_code == 301
    assert response["Location"] == "/artists/brand-new-name/?page=2"
    assert client.get("/artists/brand-new-name/").status_code == 200
    assert client.get("/artists/never-was/").status_code == 404


def test_every_old_slug_leads_to_the_current_one_and_taking_one_back_works(client, user):
    first = user.slug
    change_slug(user, "second")
    change_slug(user, "third")

    assert client.get(f"/artists/{first}/")["Location"] == "/artists/third/"
    assert client.get("/artists/second/")["Location"] == "/artists/third/"

    change_slug(user, first)  # back to the first address: it is theirs

    from accounts.models import PreviousSlug

    assert client.get(f"/artists/{first}/").status_code == 200
    assert client.get("/artists/third/")["Location"] == f"/artists/{first}/"
    assert set(PreviousSlug.objects.values_list("slug", flat=True)) == {"second", "third"}


def test_another_user_cannot_take_an_old_slug_while_it_redirects(client, user, other_user):
    old = user.slug
    change_slug(user, "moved-on")
    client.force_login(other_user)

    response = client.post("/accounts/profile/", {"display_name": "Other", "slug": old})

    assert "That address is taken" in response.content.decode()
    other_user.refresh_from_db()
    assert other_user.slug != old
    with pytest.raises(account_services.SlugTaken):
        change_slug(other_user, old)


def test_sign_up_never_derives_a_slug_that_redirects(user):
    name = user.display_name
    old = user.slug
    change_slug(user, "somewhere-else")

    newcomer = UserFactory(display_name=name)

    assert newcomer.slug != old


def test_admin_slug_change_keeps_the_old_slug_too(client, user):
    admin = UserFactory()
    admin.is_staff = admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    client.force_login(admin)
    old = user.slug
    url = f"/admin/accounts/user/{user.pk}/change/"
    form = {
        "email": user.email,
        "display_name": user.display_name,
        "slug": "renamed-by-staff",
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "previous_slugs-TOTAL_FORMS": "0",
        "previous_slugs-INITIAL_FORMS": "0",
    }

    response = client.post(url, form)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert Client().get(f"/artists/{old}/")["Location"] == "/artists/renamed-by-staff/"


# --- 3. Confirming a subscription --------------------------------------------------


def test_while_confirming_the_page_shows_only_the_confirming_state(client, user):
    client.force_login(user)

    page = client.get("/account/subscription/?welcome=1").content.decode()

    assert "Confirming your subscription" in page
    assert "free plan" not in page
    assert "Get Essential" not in page


def test_confirming_gives_up_waiting_with_a_clear_next_step(client, user):
    client.force_login(user)

    page = client.get("/account/subscription/?welcome=30").content.decode()

    assert 'http-equiv="refresh"' not in page
    assert "taking longer than usual" in page
    assert "Get Essential" not in page


def test_a_canceled_subscription_checkout_says_so(client, user, test_gateway):
    client.force_login(user)
    checkout = testmode.create_checkout(user_id=user.pk, idempotency_key="k")

    page = client.get(checkout["url"]).content.decode()
    response = client.get("/subscribe/?canceled=1")

    assert "/subscribe/?canceled=1" in page
    assert "Checkout canceled. You were not charged." in response.content.decode()


# --- 4. Generation errors -------------------------------------------------------------


def generate(client, **overrides):
    body = {"title": "Night Drive", "prompt": "warm synths", **overrides}
    return client.post(
        "/api/tracks/generate", data=json.dumps(body), content_type="application/json"
    )


@pytest.mark.parametrize(
    ("overrides", "field", "label"),
    [
        ({"title": " "}, "title", "Title"),
        ({"prompt": ""}, "prompt", "Describe it"),
        ({"duration_seconds": 999}, "duration_seconds", "Length"),
        ({"duration_seconds": "long"}, "duration_seconds", "Length"),
    ],
)
def test_generation_errors_name_the_field_by_its_label(client, user, overrides, field, label):
    client.force_login(user)

    body = generate(client, **overrides).json()

    assert body["error"] == "invalid"
    assert body["field"] == field
    assert body["message"].startswith(f"{label}:")
    assert "duration_seconds" not in body["message"]
    assert field in body["fields"]


def test_every_invalid_field_is_listed(client, user):
    client.force_login(user)

    body = generate(client, title="", duration_seconds=0).json()

    assert set(body["fields"]) == {"title", "duration_seconds"}


def test_studio_form_says_what_a_blank_length_means(client, user):
    client.force_login(user)

    page = client.get("/studio/").content.decode()

    assert "Leave blank for 60 seconds" in page
    assert 'aria-describedby="g-duration-help g-duration-error"' in page


# --- 5. Canceled checkouts and every attempt kept ------------------------------------


def start_package_payment(client, user):
    client.force_login(user)
    body = client.post("/api/credits/packages/starter/purchase").json()
    return body["payment_intent_id"], body["checkout_url"]


def test_cancel_on_the_test_card_page_says_so_and_cancels_the_payment(client, user, test_gateway):
    from payments.models import AttemptOutcome, PaymentAttempt  # noqa: F401

    intent_id, checkout_url = start_package_payment(client, user)
    page = client.get(checkout_url).content.decode()
    assert f'action="{checkout_url}cancel"' in page

    response = client.post(f"{checkout_url}cancel")

    assert response.status_code == 302 and response["Location"] == "/credits/"
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert texts == ["Payment canceled. You were not charged."]
    payment = Payment.objects.get(stripe_payment_intent_id=intent_id)
    assert payment.status == PaymentStatus.CANCELED
    assert list(payment.attempts.values_list("outcome", flat=True)) == [AttemptOutcome.CANCELED]
    # The card page no longer takes the card.
    assert "canceled" in client.get(checkout_url).content.decode()


def test_cancel_of_a_track_purchase_frees_buy_again(client, user, other_user, test_gateway):
    from credits.services import spend

    track = published_track(other_user, price=9)
    spend(user=user, amount=5, reason="test", idempotency_key="drain")
    client.force_login(user)
    body = client.post(f"/api/tracks/{track.pk}/purchase").json()

    response = client.post(f"/payments/test-checkout/{body['payment_intent_id']}/cancel")

    assert response["Location"] == f"/tracks/{track.pk}/"
    assert Purchase.objects.get().status == "canceled"
    again = client.post(f"/api/tracks/{track.pk}/purchase").json()
    assert again["status"] == "requires_payment"
    assert again["payment_intent_id"] != body["payment_intent_id"]


def test_cancel_after_paying_changes_nothing(client, user, test_gateway):
    intent_id, checkout_url = start_package_payment(client, user)
    payment_services.complete_from_intent(
        testmode.intent_object(testmode.confirm(intent_id, "4242424242424242")), cause_ref="evt_1"
    )

    response = client.post(f"{checkout_url}cancel")

    assert response["Location"] == f"/credits/?payment={intent_id}"
    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED


def test_every_attempt_is_kept_with_its_outcome(client, user, test_gateway):
    from payments.models import AttemptOutcome, PaymentAttempt  # noqa: F401

    intent_id, _ = start_package_payment(client, user)
    declined = testmode.confirm(intent_id, "4000000000000002")
    payment_services.fail_from_intent(testmode.intent_object(declined), cause_ref="evt_a")
    errored = testmode.confirm(intent_id, "4000000000000119")
    payment_services.fail_from_intent(testmode.intent_object(errored), cause_ref="evt_b")
    paid = testmode.confirm(intent_id, "4242424242424242")
    payment_services.complete_from_intent(testmode.intent_object(paid), cause_ref="evt_c")

    attempts = list(Payment.objects.get().attempts.order_by("created_at", "id"))

    assert [(a.outcome, a.code) for a in attempts] == [
        (AttemptOutcome.DECLINED, "generic_decline"),
        (AttemptOutcome.FAILED, "processing_error"),
        (AttemptOutcome.SUCCEEDED, ""),
    ]
    assert attempts[0].message == "Your card was declined."
    assert all(a.created_at for a in attempts)


def test_the_same_failure_delivered_twice_is_one_attempt(user):
    from payments.models import AttemptOutcome, PaymentAttempt  # noqa: F401

    intent = stripe_events.intent(user=user, package="starter", amount=1999)
    failed = {
        **intent,
        "status": "requires_payment_method",
        "last_payment_error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "charge": "ch_failed_1",
        },
    }

    payment_services.fail_from_intent(failed, cause_ref="evt_1")
    payment_services.fail_from_intent(failed, cause_ref="reconcile")

    attempt = PaymentAttempt.objects.get()
    assert (attempt.outcome, attempt.code) == (AttemptOutcome.DECLINED, "insufficient_funds")


def test_payment_admin_lists_the_attempts(client, user, test_gateway):
    intent_id, _ = start_package_payment(client, user)
    declined = testmode.confirm(intent_id, "4000000000000002")
    payment_services.fail_from_intent(testmode.intent_object(declined), cause_ref="evt_a")
    admin = UserFactory()
    admin.is_staff = admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    client.force_login(admin)

    page = client.get(f"/admin/payments/payment/{Payment.objects.get().pk}/change/")

    text = page.content.decode()
    assert "Attempts" in text
    assert "Your card was declined." in text and "generic_decline" in text


# --- 6. New artists on the home page ---------------------------------------------------


def test_home_lists_only_artists_with_published_tracks(client):
    artist = UserFactory(display_name="Has Tracks")
    published_track(artist)
    UserFactory(display_name="Just A Fan")
    unpublished = UserFactory(display_name="Draft Only")
    published_track(unpublished, title="Draft")
    Track.objects.filter(creator=unpublished).update(is_published=False)

    page = client.get("/").content.decode()

    assert "Has Tracks" in page
    assert "Just A Fan" not in page
    assert "Draft Only" not in page


# --- 7. The favicon ---------------------------------------------------------------------


def test_favicon_is_served_and_linked(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content.startswith(b"\x00\x00\x01\x00")
    assert 'rel="icon"' in client.get("/").content.decode()


# --- More of the same on a new user's pages -----------------------------------------------


def test_studio_tells_a_fan_without_essential_what_a_track_costs(client, user):
    client.force_login(user)

    page = client.get("/studio/").content.decode()

    assert "0 Essential generations left" not in page
    assert "Costs 1 credit per track (you have 5)." in page


def test_empty_collection_links_to_the_artists(client, user):
    client.force_login(user)

    page = client.get("/collection/").content.decode()

    assert '<a href="/">Find an artist you like</a>' in page


def test_confirming_a_first_purchase_does_not_say_no_tracks_yet(
    client, user, other_user, test_gateway
):
    track = published_track(other_user, price=9)  # more than the 5-credit gift: by card
    client.force_login(user)
    purchase_id = client.post(f"/api/tracks/{track.pk}/purchase").json()["purchase_id"]

    page = client.get(f"/collection/?purchase={purchase_id}").content.decode()

    assert "Confirming your payment" in page
    assert "No tracks yet" not in page


def test_sign_up_with_a_known_email_links_to_log_in_and_a_blank_name_says_so(client, user):
    response = client.post(
        "/accounts/signup/",
        {"email": user.email, "display_name": " ", "password1": "x", "password2": "x"},
    )

    page = response.content.decode()
    assert '<a href="/accounts/login/">Log in instead?</a>' in page
    assert "Please enter a name." in page


def test_an_essential_invoice_paid_is_one_succeeded_attempt(client, user):
    import time

    from payments.models import AttemptOutcome
    from tests.test_subscriptions import deliver_twice, invoice_event, subscribe

    sub = subscribe(user, client)

    deliver_twice(client, invoice_event("invoice.paid", sub, created=int(time.time()) + 1))

    payment = Payment.objects.get(purpose="essential")
    assert list(payment.attempts.values_list("outcome", flat=True)) == [AttemptOutcome.SUCCEEDED]
