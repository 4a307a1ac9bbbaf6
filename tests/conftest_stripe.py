"""Fixtures that run the real Stripe SDK against localstripe.

Registered in ``tests/conftest.py`` with ``pytest_plugins = ["tests.conftest_stripe"]``.
Tests that use them start a process: mark them ``@pytest.mark.slow``.

* ``localstripe`` (session): the running server (``.base_url``, ``.register_webhook``,
  ``.disable_webhook``, ``.flush``); ``localstripe_url`` is its base URL.
* ``localstripe_webhook_secret`` (session): a random ``testsecret_...`` for this run.
* ``localstripe_webhooks`` (session): a ``WebhookReceiver`` already registered with
  localstripe for every event type, signed with ``localstripe_webhook_secret``.
* ``stripe_sdk``: the global ``stripe`` module pointed at localstripe (restored after).
* ``stripe_client``: a ``stripe.StripeClient`` pointed at localstripe.
* ``localstripe_settings``: Django settings (``STRIPE_*``) pointed at localstripe.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from tests.localstripe_server import API_KEY, LocalStripe, WebhookReceiver, start_localstripe

RECEIVER_WEBHOOK_NAME = "pytest-receiver"


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    pytest.importorskip("localstripe")
    workdir: Path = tmp_path_factory.mktemp("localstripe")
    server = start_localstripe(workdir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def localstripe_url(localstripe: LocalStripe) -> str:
    return localstripe.base_url


@pytest.fixture(scope="session")
def localstripe_webhook_secret() -> str:
    return "testsecret_" + secrets.token_hex(24)


@pytest.fixture(scope="session")
def localstripe_webhooks(
    localstripe: LocalStripe, localstripe_webhook_secret: str
) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret=localstripe_webhook_secret).start()
    localstripe.register_webhook(RECEIVER_WEBHOOK_NAME, receiver.url, localstripe_webhook_secret)
    try:
        yield receiver
    finally:
        localstripe.disable_webhook(RECEIVER_WEBHOOK_NAME)
        receiver.stop()


@pytest.fixture
def stripe_sdk(localstripe_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The ``stripe`` module configured for localstripe, for legacy-style calls."""
    monkeypatch.setattr(stripe, "api_key", API_KEY)
    monkeypatch.setattr(stripe, "api_base", localstripe_url)
    # localstripe ignores Idempotency-Key, so an SDK retry could create a second
    # object; it also answers 500 for what it does not implement, which the SDK
    # would retry with back-off. Fail at once instead.
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    return stripe


@pytest.fixture
def stripe_client(localstripe_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": localstripe_url}, max_network_retries=0
    )


@pytest.fixture
def localstripe_settings(
    settings: Any, localstripe_url: str, localstripe_webhook_secret: str
) -> Any:
    """Django settings for the real SDK against localstripe (pytest-django restores them)."""
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_localstripe"
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_WEBHOOK_SECRET = localstripe_webhook_secret
    settings.STRIPE_TEST_MODE = False
    return settings
