"""The webhook signing secrets in force (never logged or shown)."""

import hashlib
import hmac

from django.conf import settings


def webhook_secrets() -> list[str]:
    """Configured secrets (comma-separated during a roll), or test mode's own secret."""
    configured = [s.strip() for s in settings.STRIPE_WEBHOOK_SECRET.split(",") if s.strip()]
    if configured:
        return configured
    if settings.STRIPE_TEST_MODE:
        # Derived from SECRET_KEY, so the test gateway and the endpoint agree without
        # any secret being written down anywhere.
        digest = hmac.new(
            settings.SECRET_KEY.encode(), b"soundstudio-test-webhooks", hashlib.sha256
        ).hexdigest()
        return [f"testmode_{digest[:32]}"]
    return []
