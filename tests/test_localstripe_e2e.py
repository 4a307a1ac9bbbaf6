"""The real stripe SDK, through our gateway, against a live localstripe process."""

import time

import pytest

from credits.models import CreditLot
from credits.selectors import balance
from credits.services import spend
from payments.models import Payment, PaymentStatus
from payments.services import request_refund
from tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def app_webhook(localstripe, localstripe_settings, live_server):
    """Register our own /webhooks/stripe/ (on a live server) with localstripe."""
    localstripe_settings.CREDITS_REQUIRE_SUBSCRIPTION = False
    localstripe.register_webhook(
        "soundstudio-app",
        live_server.url + "/webhooks/stripe/",
        localstripe_settings.STRIPE_WEBHOOK_SECRET,
    )
    yield
    localstripe.disable_webhook("soundstudio-app")


def test_package_paid_through_localstripe_is_granted_once_then_refund_voids_remainder(
    client, app_webhook, stripe_client
):
    buyer = UserFactory()
    client.force_login(buyer)

    body = client.post("/api/credits/packages/starter/purchase").json()
    intent_id = body["payment_intent_id"]
    assert intent_id.startswith("pi_")
    assert body["checkout_url"] is None  # real Stripe: the page mounts the Payment Element

    stripe_client.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    confirmed = stripe_client.v1.payment_intents.confirm(intent_id)
    assert confirmed.status == "succeeded"

    # localstripe delivers payment_intent.succeeded, signed, to our live endpoint.
    assert wait_for(
        lambda: (
            Payment.objects.get(stripe_payment_intent_id=intent_id).status
            == PaymentStatus.SUCCEEDED
        )
    )
    assert balance(buyer) == 35
    assert CreditLot.objects.filter(user=buyer, source="package").count() == 1

    spend(user=buyer, amount=10, reason="test", idempotency_key="e2e-spend")
    request_refund(payment=Payment.objects.get(stripe_payment_intent_id=intent_id))

    payment = Payment.objects.get(stripe_payment_intent_id=intent_id)
    assert payment.status == PaymentStatus.REFUNDED
    assert payment.refund_shortfall_credits == 10
    assert payment.lot.remaining == 0
    assert balance(buyer) == 5
    refunds = stripe_client.v1.refunds.list(params={"payment_intent": intent_id})
    assert len(refunds.data) == 1


def test_declined_card_leaves_the_payment_failed_and_nothing_granted(
    client, app_webhook, stripe_client
):
    import stripe

    buyer = UserFactory()
    client.force_login(buyer)
    intent_id = client.post("/api/credits/packages/starter/purchase").json()["payment_intent_id"]

    stripe_client.v1.payment_intents.update(
        intent_id, params={"payment_method": "pm_card_chargeCustomerFail"}
    )
    with pytest.raises(stripe.CardError):
        stripe_client.v1.payment_intents.confirm(intent_id)

    assert wait_for(
        lambda: (
            Payment.objects.get(stripe_payment_intent_id=intent_id).status == PaymentStatus.FAILED
        )
    )
    assert balance(buyer) == 5


def test_reconcile_completes_a_payment_whose_webhook_never_came(
    client, localstripe_settings, stripe_client
):
    import datetime as dt

    from django.utils import timezone

    from payments.services import reconcile

    localstripe_settings.CREDITS_REQUIRE_SUBSCRIPTION = False
    buyer = UserFactory()
    client.force_login(buyer)
    intent_id = client.post("/api/credits/packages/starter/purchase").json()["payment_intent_id"]
    stripe_client.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    stripe_client.v1.payment_intents.confirm(intent_id)  # no webhook is registered for us

    assert reconcile() == []  # not pending long enough yet
    report = reconcile(now=timezone.now() + dt.timedelta(minutes=11))

    assert report == [f"payment {Payment.objects.get().pk}: completed ({intent_id})"]
    assert balance(buyer) == 35
    assert reconcile(now=timezone.now() + dt.timedelta(minutes=11)) == []
