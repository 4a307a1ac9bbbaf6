"""Build and deliver Stripe-format events the way Stripe does, for tests."""

import json
import secrets
import time

from webhooks.secrets import webhook_secrets
from webhooks.signature import sign


def intent(
    *,
    user,
    package="starter",
    amount=1999,
    status="succeeded",
    intent_id=None,
    payment_id=None,
    error=None,
):
    metadata = {"purpose": "credit_package", "user_id": str(user.pk), "package": package}
    if payment_id is not None:
        metadata["payment_id"] = str(payment_id)
    return {
        "id": intent_id or f"pi_{secrets.token_hex(8)}",
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "currency": "usd",
        "status": status,
        "metadata": metadata,
        "last_payment_error": error,
        "latest_charge": None,
    }


def event(event_type, obj, *, event_id=None):
    return {
        "id": event_id or f"evt_{secrets.token_hex(8)}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def deliver(client, payload, *, secret=None, timestamp=None, body=None):
    raw = body if body is not None else json.dumps(payload).encode()
    header = sign(raw, secret or webhook_secrets()[0], timestamp=timestamp)
    return client.post(
        "/webhooks/stripe/",
        data=raw,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )
