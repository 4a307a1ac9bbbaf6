"""Stripe-Signature verification: webhooks.signature, checked against the SDK's format."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import stripe

from webhooks.signature import (
    INVALID_JSON,
    MALFORMED_HEADER,
    MISSING_HEADER,
    NO_VALID_SIGNATURE,
    NOT_CONFIGURED,
    TIMESTAMP_OUTSIDE_TOLERANCE,
    SignatureError,
    sign,
    verify,
)

SECRET = "testsecret_test_current"
OLD_SECRET = "testsecret_test_previous"
NOW = 1_760_000_000
EVENT = {"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}}
PAYLOAD = json.dumps(EVENT).encode()


def v1(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def reason(payload: bytes, header: str | None, secrets: list[str], **kwargs: int) -> str:
    with pytest.raises(SignatureError) as excinfo:
        verify(payload, header, secrets, **{"now": NOW, **kwargs})
    return excinfo.value.reason


def test_valid_signature_returns_the_event():
    header = sign(PAYLOAD, SECRET, timestamp=NOW)

    assert header == f"t={NOW},v1={v1(PAYLOAD, SECRET, NOW)}"
    assert verify(PAYLOAD, header, [SECRET], now=NOW) == EVENT


def test_sign_defaults_to_the_current_time():
    assert verify(PAYLOAD, sign(PAYLOAD, SECRET), [SECRET]) == EVENT


def test_wrong_secret_is_rejected():
    header = sign(PAYLOAD, "testsecret_someone_else", timestamp=NOW)

    assert reason(PAYLOAD, header, [SECRET]) == NO_VALID_SIGNATURE


def test_one_changed_payload_byte_is_rejected():
    header = sign(PAYLOAD, SECRET, timestamp=NOW)
    tampered = PAYLOAD.replace(b"pi_1", b"pi_2")
    assert len(tampered) == len(PAYLOAD) and tampered != PAYLOAD

    assert reason(tampered, header, [SECRET]) == NO_VALID_SIGNATURE


def test_changed_timestamp_is_rejected():
    signature = v1(PAYLOAD, SECRET, NOW)

    assert reason(PAYLOAD, f"t={NOW + 1},v1={signature}", [SECRET]) == NO_VALID_SIGNATURE


@pytest.mark.parametrize("age", [301, -301, 10**9, -(10**9)])
def test_timestamp_outside_tolerance_is_rejected(age: int):
    header = sign(PAYLOAD, SECRET, timestamp=NOW - age)

    assert reason(PAYLOAD, header, [SECRET]) == TIMESTAMP_OUTSIDE_TOLERANCE


@pytest.mark.parametrize("age", [300, -300, 0])
def test_timestamp_at_the_tolerance_edge_is_accepted(age: int):
    header = sign(PAYLOAD, SECRET, timestamp=NOW - age)

    assert verify(PAYLOAD, header, [SECRET], now=NOW) == EVENT


def test_tolerance_is_configurable():
    header = sign(PAYLOAD, SECRET, timestamp=NOW - 60)

    assert reason(PAYLOAD, header, [SECRET], tolerance=59) == TIMESTAMP_OUTSIDE_TOLERANCE
    assert verify(PAYLOAD, header, [SECRET], tolerance=60, now=NOW) == EVENT


def test_secret_roll_two_v1_signatures_accepted_with_only_the_new_secret():
    header = f"t={NOW},v1={v1(PAYLOAD, OLD_SECRET, NOW)},v1={v1(PAYLOAD, SECRET, NOW)}"

    assert verify(PAYLOAD, header, [SECRET], now=NOW) == EVENT
    assert verify(PAYLOAD, header, [OLD_SECRET], now=NOW) == EVENT
    assert reason(PAYLOAD, header, ["testsecret_other"]) == NO_VALID_SIGNATURE


def test_we_may_be_configured_with_two_secrets():
    header = sign(PAYLOAD, OLD_SECRET, timestamp=NOW)

    assert verify(PAYLOAD, header, [SECRET, OLD_SECRET], now=NOW) == EVENT


def test_other_schemes_are_ignored():
    header = f"t={NOW},v0={v1(PAYLOAD, SECRET, NOW)},v1={v1(PAYLOAD, SECRET, NOW)},x=1"
    assert verify(PAYLOAD, header, [SECRET], now=NOW) == EVENT

    # A v0 signature alone is not enough.
    assert reason(PAYLOAD, f"t={NOW},v0={v1(PAYLOAD, SECRET, NOW)}", [SECRET]) == MALFORMED_HEADER


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header(header: str | None):
    assert reason(PAYLOAD, header, [SECRET]) == MISSING_HEADER


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=,v1=abc",
        f"v1={'0' * 64}",
        f"t={NOW}",
        f"t=-5,v1={'0' * 64}",
        f"t=12a,v1={'0' * 64}",
        f"t=\u00b2,v1={'0' * 64}",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={NOW},,v1={'0' * 64}",
        f"t={NOW},=x,v1={'0' * 64}",
    ],
)
def test_malformed_header(header: str):
    assert reason(PAYLOAD, header, [SECRET]) == MALFORMED_HEADER


def test_spaces_around_items_are_tolerated():
    header = f"t={NOW}, v1={v1(PAYLOAD, SECRET, NOW)}"

    assert verify(PAYLOAD, header, [SECRET], now=NOW) == EVENT


def test_non_ascii_signature_is_a_mismatch_not_a_crash():
    assert reason(PAYLOAD, f"t={NOW},v1=\u00e9\u00e9", [SECRET]) == NO_VALID_SIGNATURE


@pytest.mark.parametrize("payload", [b"not json", b"\xff\xfe\x00", b"[1, 2]", b'"event"'])
def test_invalid_json_is_rejected_after_a_valid_signature(payload: bytes):
    header = sign(payload, SECRET, timestamp=NOW)

    assert reason(payload, header, [SECRET]) == INVALID_JSON


def test_empty_secrets_never_validate():
    header = f"t={NOW},v1={v1(PAYLOAD, '', NOW)}"  # anyone can compute this one

    assert reason(PAYLOAD, header, []) == NOT_CONFIGURED
    assert reason(PAYLOAD, header, [""]) == NOT_CONFIGURED
    with pytest.raises(ValueError):
        sign(PAYLOAD, "")


def test_a_single_string_is_not_taken_as_a_list_of_secrets():
    with pytest.raises(TypeError):
        verify(PAYLOAD, sign(PAYLOAD, SECRET, timestamp=NOW), SECRET, now=NOW)


def test_error_messages_never_contain_the_secret():
    cases = [
        (PAYLOAD, sign(PAYLOAD, "testsecret_x", timestamp=NOW)),
        (PAYLOAD, sign(PAYLOAD, SECRET, timestamp=NOW - 1000)),
        (PAYLOAD, "t=oops"),
        (b"nope", sign(b"nope", SECRET, timestamp=NOW)),
    ]
    for payload, header in cases:
        with pytest.raises(SignatureError) as excinfo:
            verify(payload, header, [SECRET], now=NOW)
        assert SECRET not in str(excinfo.value)
        assert SECRET not in repr(excinfo.value)
        assert "testsecret_" not in str(excinfo.value)


class TestCompatibilityWithTheStripeSdk:
    def test_sdk_accepts_our_header(self):
        header = sign(PAYLOAD, SECRET)

        assert stripe.WebhookSignature.verify_header(PAYLOAD, header, SECRET, tolerance=300)
        event = stripe.Webhook.construct_event(PAYLOAD, header, SECRET)
        assert event.id == "evt_1"

    def test_we_accept_the_sdks_header(self):
        header = stripe.WebhookSignature.generate_signature_header(
            PAYLOAD.decode(), SECRET, timestamp=NOW
        )

        assert verify(PAYLOAD, header, [SECRET], now=NOW) == EVENT

    def test_sdk_rejects_a_wrong_secret_like_we_do(self):
        header = sign(PAYLOAD, "testsecret_someone_else")

        with pytest.raises(stripe.SignatureVerificationError):
            stripe.WebhookSignature.verify_header(PAYLOAD, header, SECRET, tolerance=300)

    def test_sdk_only_checks_the_past_which_is_why_we_verify_ourselves(self):
        future = int(time.time()) + 3600
        header = sign(PAYLOAD, SECRET, timestamp=future)

        # The SDK accepts a timestamp an hour ahead; we do not.
        assert stripe.WebhookSignature.verify_header(PAYLOAD, header, SECRET, tolerance=300)
        with pytest.raises(SignatureError) as excinfo:
            verify(PAYLOAD, header, [SECRET])
        assert excinfo.value.reason == TIMESTAMP_OUTSIDE_TOLERANCE
