"""What the real stripe SDK (16.1.0) can and cannot do against localstripe (1.15.10).

These tests pin the behaviour the payment gateway and its tests rely on, including
localstripe's gaps and departures from real Stripe, so an upgrade of either
package that changes it fails here first.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
import stripe

from tests.localstripe_server import LocalStripe, WebhookReceiver
from webhooks.signature import NO_VALID_SIGNATURE, SignatureError, verify

pytestmark = pytest.mark.slow

VISA = "pm_card_visa"  # 4242 4242 4242 4242: succeeds
DECLINE = "pm_card_chargeCustomerFail"  # 4000 0000 0000 0341: declined when charged

EVENT_KEYS = {"api_version", "created", "data", "id", "livemode", "object", "type"}
PAYMENT_INTENT_KEYS = {
    "amount",
    "capture_method",
    "charges",
    "client_secret",
    "created",
    "currency",
    "customer",
    "id",
    "invoice",
    "last_payment_error",
    "latest_charge",
    "livemode",
    "metadata",
    "next_action",
    "object",
    "payment_method",
    "status",
}


def metadata(user_id: int = 7) -> dict[str, str]:
    return {"purpose": "credit_package", "user_id": str(user_id), "package": "starter-100"}


def card(number: str) -> dict[str, Any]:
    return {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def events_about(sdk: Any, object_id: str) -> list[Any]:
    """Every event localstripe created about ``object_id`` (created synchronously)."""
    return [
        event
        for event in sdk.Event.list(limit=100).auto_paging_iter()
        if event.to_dict()["data"]["object"].get("id") == object_id
    ]


class TestSdkWiring:
    def test_global_api_base_talks_to_localstripe(self, stripe_sdk):
        intent = stripe_sdk.PaymentIntent.create(amount=100, currency="usd")

        assert intent.id.startswith("pi_")
        assert stripe_sdk.PaymentIntent.retrieve(intent.id).amount == 100

    def test_stripe_client_with_base_addresses_talks_to_localstripe(self, stripe_client):
        intent = stripe_client.v1.payment_intents.create(
            params={"amount": 300, "currency": "usd", "payment_method": VISA, "confirm": True},
            options={"idempotency_key": f"test-{uuid.uuid4()}"},
        )

        assert intent.status == "succeeded"
        assert stripe_client.v1.payment_intents.retrieve(intent.id).status == "succeeded"

    def test_localstripe_settings_build_a_working_client(self, localstripe_settings):
        # How the gateway is expected to build its client from settings.
        base = localstripe_settings.STRIPE_API_BASE
        client = stripe.StripeClient(
            localstripe_settings.STRIPE_SECRET_KEY,
            base_addresses={"api": base} if base else None,
            max_network_retries=0,
        )

        assert localstripe_settings.STRIPE_TEST_MODE is False
        assert localstripe_settings.STRIPE_WEBHOOK_SECRET.startswith("testsecret_")
        assert client.v1.customers.create(params={"email": "a@example.com"}).id.startswith("cus_")

    def test_any_sk_key_is_accepted_but_a_publishable_key_is_not(self, stripe_sdk):
        fake_key = "sk_test_anything"  # localstripe takes any key: secret-scan: allow
        assert stripe_sdk.PaymentIntent.list(limit=1, api_key=fake_key).object == "list"
        with pytest.raises(stripe.AuthenticationError):
            stripe_sdk.PaymentIntent.list(limit=1, api_key="pk_test_12345")


class TestPaymentIntents:
    def test_create_keeps_metadata_and_waits_for_confirmation(self, stripe_sdk):
        intent = stripe_sdk.PaymentIntent.create(
            amount=1500,
            currency="usd",
            metadata=metadata(),
            payment_method=VISA,
            idempotency_key=f"credit-purchase-{uuid.uuid4()}",
        )

        assert intent.status == "requires_confirmation"
        assert (intent.amount, intent.currency) == (1500, "usd")
        assert intent.metadata.to_dict() == metadata()
        assert intent.payment_method == VISA
        assert intent.client_secret.startswith(f"{intent.id}_secret_")
        assert intent.latest_charge is None

    def test_without_a_payment_method_it_requires_one(self, stripe_sdk):
        intent = stripe_sdk.PaymentIntent.create(amount=1500, currency="usd")

        assert intent.status == "requires_payment_method"

    def test_confirm_with_pm_card_visa_succeeds(self, stripe_sdk):
        intent = stripe_sdk.PaymentIntent.create(
            amount=1500, currency="usd", metadata=metadata(), payment_method=VISA
        )

        confirmed = stripe_sdk.PaymentIntent.confirm(intent.id)
        retrieved = stripe_sdk.PaymentIntent.retrieve(intent.id)

        assert confirmed.status == retrieved.status == "succeeded"
        assert retrieved.metadata.to_dict() == metadata()
        # Real Stripe returns latest_charge as an id unless expanded;
        # localstripe always embeds the whole Charge.
        charge = retrieved.latest_charge
        assert isinstance(charge, stripe.Charge)
        assert charge.id.startswith("ch_")
        assert (charge.payment_intent, charge.amount, charge.paid) == (intent.id, 1500, True)
        assert charge.status == "succeeded" and charge.captured is True
        assert retrieved.charges.data[0].id == charge.id

    def test_raw_4242_card_succeeds_with_confirm_on_create(self, stripe_sdk):
        method = stripe_sdk.PaymentMethod.create(type="card", card=card("4242424242424242"))

        intent = stripe_sdk.PaymentIntent.create(
            amount=900, currency="usd", payment_method=method.id, confirm=True
        )

        assert method.id.startswith("pm_") and method.card.last4 == "4242"
        assert intent.status == "succeeded"

    @pytest.mark.parametrize("number", [None, "4000000000000341"])
    def test_declined_card_raises_card_error(self, stripe_sdk, number: str | None):
        method = (
            DECLINE
            if number is None
            else stripe_sdk.PaymentMethod.create(type="card", card=card(number)).id
        )
        intent = stripe_sdk.PaymentIntent.create(amount=900, currency="usd", payment_method=method)

        with pytest.raises(stripe.CardError) as excinfo:
            stripe_sdk.PaymentIntent.confirm(intent.id)

        assert excinfo.value.http_status == 402
        assert excinfo.value.code == "card_declined"
        after = stripe_sdk.PaymentIntent.retrieve(intent.id)
        assert after.status == "requires_payment_method"
        assert after.last_payment_error.code == "card_declined"

    @pytest.mark.parametrize(
        "method",
        [
            "pm_card_visa_chargeDeclined",
            card("4000000000000002"),  # generic decline on real Stripe
            card("4000000000009995"),  # insufficient funds on real Stripe
        ],
    )
    def test_cards_that_decline_on_real_stripe_succeed_on_localstripe(self, stripe_sdk, method):
        if isinstance(method, dict):
            method = stripe_sdk.PaymentMethod.create(type="card", card=method).id

        intent = stripe_sdk.PaymentIntent.create(
            amount=900, currency="usd", payment_method=method, confirm=True
        )

        assert intent.status == "succeeded"

    def test_3d_secure_card_requires_action(self, stripe_sdk):
        method = stripe_sdk.PaymentMethod.create(type="card", card=card("4000002500003155"))

        intent = stripe_sdk.PaymentIntent.create(
            amount=900, currency="usd", payment_method=method.id, confirm=True
        )

        assert intent.status == "requires_action"

    def test_idempotency_key_is_not_honoured(self, stripe_sdk):
        key = f"credit-purchase-{uuid.uuid4()}"
        params = {"amount": 1500, "currency": "usd", "metadata": metadata()}

        first = stripe_sdk.PaymentIntent.create(**params, idempotency_key=key)
        second = stripe_sdk.PaymentIntent.create(**params, idempotency_key=key)

        # Real Stripe would return the first object again.
        assert first.id != second.id

    def test_the_sdk_does_send_our_idempotency_key(self):
        recorder = WebhookReceiver().start()  # any HTTP server that records requests
        try:
            client = stripe.StripeClient(
                "sk_test_x",
                base_addresses={"api": recorder.url.split("/webhooks/")[0]},
                max_network_retries=0,
            )
            with pytest.raises(stripe.APIError):  # the recorder's empty body is not JSON
                client.v1.payment_intents.create(
                    params={"amount": 1, "currency": "usd"}, options={"idempotency_key": "k-1"}
                )
            request = recorder.wait_for(lambda r: r.path == "/v1/payment_intents", timeout=2)
        finally:
            recorder.stop()

        assert request.headers["Idempotency-Key"] == "k-1"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"

    def test_confirm_with_a_payment_method_is_not_implemented(self, stripe_sdk):
        intent = stripe_sdk.PaymentIntent.create(amount=900, currency="usd")

        with pytest.raises(stripe.APIError) as excinfo:
            stripe_sdk.PaymentIntent.confirm(intent.id, payment_method=VISA)
        assert excinfo.value.http_status == 500

        # Workaround: set the payment method first, then confirm without one.
        stripe_sdk.PaymentIntent.modify(intent.id, payment_method=VISA)
        assert stripe_sdk.PaymentIntent.confirm(intent.id).status == "succeeded"

    @pytest.mark.parametrize(
        "extra",
        [
            {"automatic_payment_methods": {"enabled": True}},
            {"description": "100 credits"},
            {"receipt_email": "fan@example.com"},
            {"statement_descriptor_suffix": "CREDITS"},
        ],
    )
    def test_unsupported_create_parameters_are_rejected(self, stripe_sdk, extra):
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            stripe_sdk.PaymentIntent.create(amount=900, currency="usd", **extra)

        assert excinfo.value.http_status == 400
        assert str(excinfo.value) == f"Unexpected {next(iter(extra))}"

    def test_supported_optional_parameters(self, stripe_sdk):
        intent = stripe_sdk.PaymentIntent.create(
            amount=900,
            currency="usd",
            payment_method_types=["card"],
            capture_method="manual",
            payment_method=VISA,
            confirm=True,
            expand=["latest_charge"],
        )

        assert intent.status == "requires_capture"
        assert stripe_sdk.PaymentIntent.capture(intent.id).status == "succeeded"

    def test_search_is_not_supported_but_list_is(self, stripe_sdk):
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            stripe_sdk.PaymentIntent.search(query="metadata['user_id']:'7'")

        assert excinfo.value.http_status == 404
        assert stripe_sdk.PaymentIntent.list(limit=1).object == "list"


class TestSignedWebhooks:
    def test_payment_intent_succeeded_is_delivered_signed(
        self, stripe_sdk, localstripe_webhooks: WebhookReceiver
    ):
        intent = stripe_sdk.PaymentIntent.create(
            amount=1500, currency="usd", metadata=metadata(), payment_method=VISA
        )
        stripe_sdk.PaymentIntent.confirm(intent.id)
        confirmed_at = time.time()
        # Delivery is asynchronous: nothing has arrived when confirm returns.
        assert localstripe_webhooks.events_for(intent.id) == []

        webhook = localstripe_webhooks.wait_for_event(
            "payment_intent.succeeded", intent.id, timeout=5
        )

        # localstripe sleeps 1 s before each delivery.
        assert webhook.received_at - confirmed_at > 0.5
        assert webhook.path == "/webhooks/stripe/"
        assert webhook.headers["Content-Type"] == "application/json; charset=utf-8"
        header = webhook.headers["Stripe-Signature"]
        assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)

        event = verify(webhook.body, header, [localstripe_webhooks.secret])
        assert stripe.Webhook.construct_event(webhook.body, header, localstripe_webhooks.secret)
        with pytest.raises(SignatureError) as excinfo:
            verify(webhook.body, header, ["testsecret_not_the_one"])
        assert excinfo.value.reason == NO_VALID_SIGNATURE

        assert set(event) == EVENT_KEYS
        assert event["object"] == "event"
        assert event["id"].startswith("evt_")
        assert event["type"] == "payment_intent.succeeded"
        assert event["api_version"] == "2017-08-15"
        assert event["livemode"] is False
        assert header.startswith(f"t={event['created']},")
        assert set(event["data"]) == {"object"}

        obj = event["data"]["object"]
        assert set(obj) == PAYMENT_INTENT_KEYS
        assert obj["object"] == "payment_intent"
        assert (obj["id"], obj["amount"], obj["currency"]) == (intent.id, 1500, "usd")
        assert obj["status"] == "succeeded"
        assert obj["metadata"] == metadata()
        assert obj["latest_charge"]["object"] == "charge"
        assert obj["latest_charge"]["payment_intent"] == intent.id
        assert obj["latest_charge"]["amount_refunded"] == 0
        assert obj["charges"]["data"][0]["id"] == obj["latest_charge"]["id"]

        # A handler without local state can fetch the event and the object back.
        fetched = stripe_sdk.Event.retrieve(event["id"])
        assert fetched.type == "payment_intent.succeeded"
        assert fetched.data.object["id"] == intent.id
        assert stripe_sdk.PaymentIntent.retrieve(intent.id).status == "succeeded"

    def test_decline_delivers_payment_failed(
        self, stripe_sdk, localstripe_webhooks: WebhookReceiver
    ):
        intent = stripe_sdk.PaymentIntent.create(
            amount=900, currency="usd", metadata=metadata(), payment_method=DECLINE
        )
        with pytest.raises(stripe.CardError):
            stripe_sdk.PaymentIntent.confirm(intent.id)

        webhook = localstripe_webhooks.wait_for_event(
            "payment_intent.payment_failed", intent.id, timeout=5
        )

        event = verify(
            webhook.body, webhook.headers["Stripe-Signature"], [localstripe_webhooks.secret]
        )
        obj = event["data"]["object"]
        assert obj["status"] == "requires_payment_method"
        assert obj["last_payment_error"]["code"] == "card_declined"
        assert obj["latest_charge"]["status"] == "failed"
        assert obj["metadata"] == metadata()

    def test_registration_events_filter_and_no_redelivery(
        self, stripe_sdk, localstripe: LocalStripe
    ):
        failing = WebhookReceiver(secret="testsecret_" + uuid.uuid4().hex, status=500).start()
        name = f"failing-{uuid.uuid4().hex[:8]}"
        try:
            localstripe.register_webhook(
                name, failing.url, failing.secret, events=["customer.created"]
            )
            stripe_sdk.PaymentIntent.create(
                amount=900, currency="usd", payment_method=VISA, confirm=True
            )
            customer = stripe_sdk.Customer.create(email="fan@example.com")

            failing.wait_for_event("customer.created", customer.id, timeout=5)
            time.sleep(2)  # real Stripe would retry a 500 (for days); localstripe never does
        finally:
            localstripe.disable_webhook(name)
            failing.stop()

        assert [w.event["type"] for w in failing.received] == ["customer.created"]


class TestRefunds:
    def test_refund_of_a_succeeded_payment_intent(self, stripe_sdk):
        intent = stripe_sdk.PaymentIntent.create(
            amount=1000, currency="usd", metadata=metadata(), payment_method=VISA, confirm=True
        )

        refund = stripe_sdk.Refund.create(
            payment_intent=intent.id,
            metadata={"reason": "admin"},
            idempotency_key=f"refund-{intent.id}",
        )

        assert refund.id.startswith("re_")
        assert refund.status == "succeeded"
        assert refund.amount == 1000
        assert refund.payment_intent == intent.id
        assert refund.charge == intent.latest_charge.id  # an id here, not embedded
        charge = stripe_sdk.Charge.retrieve(refund.charge)
        assert (charge.amount_refunded, charge.refunded) == (1000, True)
        assert [r.id for r in charge.refunds.data] == [refund.id]
        # The PaymentIntent stays "succeeded", as on real Stripe.
        after = stripe_sdk.PaymentIntent.retrieve(intent.id)
        assert after.status == "succeeded"
        assert after.latest_charge.amount_refunded == 1000

    def test_refunds_send_no_event_at_all(self, stripe_sdk):
        intent = stripe_sdk.PaymentIntent.create(
            amount=1000, currency="usd", payment_method=VISA, confirm=True
        )
        refund = stripe_sdk.Refund.create(payment_intent=intent.id)

        # Events are created synchronously, so the event list is a complete record of
        # what will ever be delivered: no charge.refunded, no refund.* event.
        assert events_about(stripe_sdk, refund.id) == []
        assert events_about(stripe_sdk, intent.latest_charge.id) == []
        assert stripe_sdk.Event.list(type="charge.refunded").data == []
        assert [e.type for e in events_about(stripe_sdk, intent.id)] == ["payment_intent.succeeded"]

    def test_partial_and_over_refunds_are_accepted(self, stripe_sdk):
        intent = stripe_sdk.PaymentIntent.create(
            amount=1000, currency="usd", payment_method=VISA, confirm=True
        )

        stripe_sdk.Refund.create(payment_intent=intent.id, amount=300)
        # Without an amount localstripe refunds the whole charge again, not the rest;
        # real Stripe would refund 700 and then refuse more.
        rest = stripe_sdk.Refund.create(payment_intent=intent.id)

        assert rest.amount == 1000
        assert stripe_sdk.Charge.retrieve(intent.latest_charge.id).amount_refunded == 1300

    def test_refund_reason_is_not_supported_and_failed_payments_cannot_be_refunded(
        self, stripe_sdk
    ):
        paid = stripe_sdk.PaymentIntent.create(
            amount=1000, currency="usd", payment_method=VISA, confirm=True
        )
        with pytest.raises(stripe.InvalidRequestError, match="Unexpected reason"):
            stripe_sdk.Refund.create(payment_intent=paid.id, reason="requested_by_customer")

        failed = stripe_sdk.PaymentIntent.create(
            amount=1000, currency="usd", payment_method=DECLINE
        )
        with pytest.raises(stripe.CardError):
            stripe_sdk.PaymentIntent.confirm(failed.id)
        with pytest.raises(stripe.InvalidRequestError, match="Cannot refund a failed payment"):
            stripe_sdk.Refund.create(payment_intent=failed.id)


class TestBilling:
    def test_customer_plan_and_subscription_work(self, stripe_sdk):
        customer = stripe_sdk.Customer.create(
            email="creator@example.com",
            metadata={"user_id": "42"},
            payment_method=VISA,
            invoice_settings={"default_payment_method": VISA},
        )
        product = stripe_sdk.Product.create(name="Essential")
        plan = stripe_sdk.Plan.create(
            product=product.id, amount=999, currency="usd", interval="month"
        )

        subscription = stripe_sdk.Subscription.create(
            customer=customer.id, items=[{"plan": plan.id}], metadata={"user_id": "42"}
        )

        assert subscription.status == "active"
        assert subscription.metadata.to_dict() == {"user_id": "42"}
        assert subscription.plan.id == plan.id
        assert subscription.current_period_end > subscription.current_period_start
        types = [e.type for e in stripe_sdk.Event.list(limit=100).auto_paging_iter()]
        assert "customer.subscription.created" in types
        assert "invoice.payment_succeeded" in types

        assert stripe_sdk.Subscription.cancel(subscription.id).status == "canceled"
        # Oldest first: real Stripe lists events newest first.
        assert [e.type for e in events_about(stripe_sdk, subscription.id)] == [
            "customer.subscription.created",
            "customer.subscription.deleted",
        ]

    def test_subscription_needs_a_default_payment_method(self, stripe_sdk):
        customer = stripe_sdk.Customer.create(email="creator@example.com")
        product = stripe_sdk.Product.create(name="Essential")
        plan = stripe_sdk.Plan.create(
            product=product.id, amount=999, currency="usd", interval="month"
        )

        # Real Stripe would create an "incomplete" subscription instead.
        with pytest.raises(stripe.InvalidRequestError, match="no payment method"):
            stripe_sdk.Subscription.create(customer=customer.id, items=[{"plan": plan.id}])

    def test_prices_and_checkout_sessions_are_not_supported(self, stripe_sdk):
        product = stripe_sdk.Product.create(name="Essential")

        with pytest.raises(stripe.APIError) as price_error:
            stripe_sdk.Price.create(
                product=product.id, unit_amount=999, currency="usd", recurring={"interval": "month"}
            )
        with pytest.raises(stripe.APIError) as checkout_error:
            stripe_sdk.checkout.Session.create(
                mode="subscription",
                line_items=[{"price": "price_x", "quantity": 1}],
                success_url="http://127.0.0.1/ok",
                metadata={"user_id": "42"},
            )

        assert price_error.value.http_status == checkout_error.value.http_status == 404
