"""The one door to Stripe. Nothing else imports the SDK (the webhook view verifies
signatures with our own code). Every create carries an Idempotency-Key derived from
our ids, so a retried request never makes a second charge.

Objects come back as plain Stripe-shaped dicts, the same shape webhook events carry,
so handlers treat fetched and delivered objects alike.

With no STRIPE_SECRET_KEY the app runs on the built-in TestGateway, which keeps its
PaymentIntents in the database and delivers signed events to our own webhook.
"""

from __future__ import annotations

import secrets
from functools import cache
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse


class GatewayError(Exception):
    """Stripe could not be reached or refused the request."""


class Gateway(Protocol):
    test_mode: bool

    def create_payment_intent(
        self, *, amount: int, currency: str, metadata: dict, description: str, idempotency_key: str
    ) -> dict: ...

    def retrieve_payment_intent(self, intent_id: str) -> dict: ...

    def create_refund(
        self, *, payment_intent_id: str, amount: int | None = None, idempotency_key: str
    ) -> dict: ...

    def list_refunds(self, *, payment_intent_id: str) -> list[dict]: ...

    def card_fee(self, *, charge_id: str | None, amount: int) -> int | None: ...

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> dict: ...

    def list_payment_intents(self, *, created_gte: int, created_lt: int) -> list[dict]: ...

    def list_charges(self, *, created_gte: int, created_lt: int) -> list[dict]: ...

    def checkout_url(self, intent: dict) -> str | None: ...

    def create_subscription_checkout(
        self, *, user_id: int, email: str, success_url: str, cancel_url: str, idempotency_key: str
    ) -> dict: ...

    def retrieve_subscription(self, subscription_id: str) -> dict: ...

    def set_cancel_at_period_end(
        self, subscription_id: str, *, cancel: bool, idempotency_key: str
    ) -> dict: ...

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict: ...

    def portal_url(self, *, customer_id: str, return_url: str) -> str | None: ...


def _fee_of(charge: dict) -> int | None:
    """The fee on a charge's (expanded) balance transaction; None when there is none."""
    balance_transaction = charge.get("balance_transaction")
    if isinstance(balance_transaction, dict) and balance_transaction.get("fee") is not None:
        return int(balance_transaction["fee"])
    return None


def fee_of(charge: dict) -> int | None:
    return charge["fee"] if "fee" in charge else _fee_of(charge)


class StripeGateway:
    test_mode = False

    def __init__(self, api_key: str, api_base: str = ""):
        import stripe

        self._stripe = stripe
        options = {"base_addresses": {"api": api_base}} if api_base else {}
        self.client = stripe.StripeClient(api_key, max_network_retries=2, **options)

    def _call(self, fn, *args, **kwargs) -> dict:
        try:
            return fn(*args, **kwargs).to_dict()
        except self._stripe.StripeError as exc:  # never includes our key
            raise GatewayError(exc.user_message or exc.__class__.__name__) from exc

    def create_payment_intent(
        self, *, amount: int, currency: str, metadata: dict, description: str, idempotency_key: str
    ) -> dict:
        return self._call(
            self.client.v1.payment_intents.create,
            # Card and wallet methods come from the dashboard (automatic payment
            # methods are Stripe's default), so only the essentials are sent.
            params={"amount": amount, "currency": currency, "metadata": metadata},
            options={"idempotency_key": idempotency_key},
        )

    def retrieve_payment_intent(self, intent_id: str) -> dict:
        return self._call(self.client.v1.payment_intents.retrieve, intent_id)

    def create_refund(
        self, *, payment_intent_id: str, amount: int | None = None, idempotency_key: str
    ) -> dict:
        params = {"payment_intent": payment_intent_id}
        if amount is not None:
            params["amount"] = amount
        return self._call(
            self.client.v1.refunds.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )

    def list_refunds(self, *, payment_intent_id: str) -> list[dict]:
        page = self._call(
            self.client.v1.refunds.list,
            params={"payment_intent": payment_intent_id, "limit": 100},
        )
        return page.get("data") or []

    def card_fee(self, *, charge_id: str | None, amount: int) -> int | None:
        """The fee on the charge's balance transaction; None when Stripe has none
        (yet, or an emulator such as localstripe that keeps no balance)."""
        if not charge_id:
            return None
        charge = self._call(
            self.client.v1.charges.retrieve,
            charge_id,
            params={"expand": ["balance_transaction"]},
        )
        return _fee_of(charge)

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> dict:
        return self._call(
            self.client.v1.payment_intents.cancel,
            intent_id,
            options={"idempotency_key": idempotency_key},
        )

    def _list_all(self, service, params: dict) -> list[dict]:
        """Every object of a list call, 100 per request (Stripe's page size limit)."""
        try:
            page = service.list(params={**params, "limit": 100})
            return [obj.to_dict() for obj in page.auto_paging_iter()]
        except self._stripe.StripeError as exc:
            raise GatewayError(exc.user_message or exc.__class__.__name__) from exc

    def list_payment_intents(self, *, created_gte: int, created_lt: int) -> list[dict]:
        return self._list_all(
            self.client.v1.payment_intents, {"created": {"gte": created_gte, "lt": created_lt}}
        )

    def list_charges(self, *, created_gte: int, created_lt: int) -> list[dict]:
        return self._list_all(
            self.client.v1.charges,
            {
                "created": {"gte": created_gte, "lt": created_lt},
                "expand": ["data.balance_transaction"],
            },
        )

    def checkout_url(self, intent: dict) -> str | None:
        return None  # the page mounts Stripe's Payment Element instead

    def create_subscription_checkout(
        self, *, user_id: int, email: str, success_url: str, cancel_url: str, idempotency_key: str
    ) -> dict:
        from django.conf import settings

        metadata = {"user_id": str(user_id)}
        return self._call(
            self.client.v1.checkout.sessions.create,
            params={
                "mode": "subscription",
                "line_items": [{"price": settings.STRIPE_ESSENTIAL_PRICE_ID, "quantity": 1}],
                "customer_email": email,
                "client_reference_id": str(user_id),
                "metadata": metadata,
                "subscription_data": {"metadata": metadata},
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
            options={"idempotency_key": idempotency_key},
        )

    def retrieve_subscription(self, subscription_id: str) -> dict:
        return self._call(self.client.v1.subscriptions.retrieve, subscription_id)

    def set_cancel_at_period_end(
        self, subscription_id: str, *, cancel: bool, idempotency_key: str
    ) -> dict:
        return self._call(
            self.client.v1.subscriptions.update,
            subscription_id,
            params={"cancel_at_period_end": cancel},
            options={"idempotency_key": idempotency_key},
        )

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict:
        return self._call(
            self.client.v1.subscriptions.cancel,
            subscription_id,
            options={"idempotency_key": idempotency_key},
        )

    def portal_url(self, *, customer_id: str, return_url: str) -> str | None:
        session = self._call(
            self.client.v1.billing_portal.sessions.create,
            params={"customer": customer_id, "return_url": return_url},
        )
        return session.get("url")


class TestGateway:
    """Stripe's behaviour for PaymentIntents and refunds, kept in our database."""

    test_mode = True

    def create_payment_intent(
        self, *, amount: int, currency: str, metadata: dict, description: str, idempotency_key: str
    ) -> dict:
        from payments.models import TestModeIntent

        existing = TestModeIntent.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            intent_id = f"pi_test_{secrets.token_hex(12)}"
            try:
                with transaction.atomic():
                    existing = TestModeIntent.objects.create(
                        id=intent_id,
                        client_secret=f"{intent_id}_secret_{secrets.token_hex(12)}",
                        idempotency_key=idempotency_key,
                        amount=amount,
                        currency=currency,
                        metadata={k: str(v) for k, v in metadata.items()},
                    )
            except IntegrityError:  # the same key raced us: Stripe returns the first result
                existing = TestModeIntent.objects.get(idempotency_key=idempotency_key)
        from payments import testmode

        return testmode.intent_object(existing)

    def retrieve_payment_intent(self, intent_id: str) -> dict:
        from payments import testmode
        from payments.models import TestModeIntent

        intent = TestModeIntent.objects.filter(pk=intent_id).first()
        if intent is None:
            raise GatewayError(f"No such payment_intent: {intent_id}")
        return testmode.intent_object(intent)

    def create_refund(
        self, *, payment_intent_id: str, amount: int | None = None, idempotency_key: str
    ) -> dict:
        from payments import testmode

        return testmode.refund(payment_intent_id, amount=amount, idempotency_key=idempotency_key)

    def list_refunds(self, *, payment_intent_id: str) -> list[dict]:
        from payments import testmode

        return testmode.list_refunds(payment_intent_id)

    def card_fee(self, *, charge_id: str | None, amount: int) -> int | None:
        from payments import testmode

        return testmode.card_fee(amount)

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> dict:
        from payments import testmode

        return testmode.intent_object(testmode.cancel(intent_id))

    def list_payment_intents(self, *, created_gte: int, created_lt: int) -> list[dict]:
        from payments import testmode

        return [
            testmode.intent_object(i) for i in testmode.intents_created(created_gte, created_lt)
        ]

    def list_charges(self, *, created_gte: int, created_lt: int) -> list[dict]:
        from payments import testmode

        return [
            testmode.charge_object(i)
            for i in testmode.intents_created(created_gte, created_lt)
            if i.charge_id
        ]

    def checkout_url(self, intent: dict) -> str | None:
        return reverse("test_checkout", kwargs={"intent_id": intent["id"]})

    def create_subscription_checkout(
        self, *, user_id: int, email: str, success_url: str, cancel_url: str, idempotency_key: str
    ) -> dict:
        from payments import testmode

        return testmode.create_checkout(user_id=user_id, idempotency_key=idempotency_key)

    def retrieve_subscription(self, subscription_id: str) -> dict:
        from payments import testmode

        return testmode.subscription_object(testmode.get_subscription(subscription_id))

    def set_cancel_at_period_end(
        self, subscription_id: str, *, cancel: bool, idempotency_key: str
    ) -> dict:
        from payments import testmode

        return testmode.set_cancel_at_period_end(subscription_id, cancel=cancel)

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict:
        from payments import testmode

        return testmode.cancel_subscription(subscription_id)

    def portal_url(self, *, customer_id: str, return_url: str) -> str | None:
        return None  # test mode has no customer portal; the account page does it all


@cache
def _stripe_gateway(api_key: str, api_base: str) -> StripeGateway:
    return StripeGateway(api_key, api_base)


def get_gateway() -> Gateway:
    if settings.STRIPE_SECRET_KEY:
        return _stripe_gateway(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)
    return TestGateway()
