"""Our Stripe-Signature verifier against Stripe's own SDK, and where we are stricter than it."""

from __future__ import annotations

import time

import pytest
import stripe

from pipeline.errors import SignatureError
from pipeline.providers.stripe.source import SOURCE as STRIPE_SOURCE
from pipeline.signatures.base import SignedRequest, Verified
from pipeline.signatures.timestamped_hmac import timestamped_hmac_header
from tests.support.contexts import source_config

SOURCE = source_config(
    STRIPE_SOURCE, signing_secrets=("whsec_new", "whsec_old"), max_body_bytes=1000
)
BODY = b'{"id": "evt_1", "object": "event", "type": "checkout.session.completed"}'


def check(header: str, *, now: float | None = None, body: bytes = BODY) -> Verified:
    request = SignedRequest(body, {"Stripe-Signature": header}, {}, now or time.time())
    return STRIPE_SOURCE.signature.verify(SOURCE, request)


def sdk_accepts(header: str, secret: str, body: bytes = BODY) -> bool:
    try:
        stripe.WebhookSignature.verify_header(body.decode(), header, secret, tolerance=300)
    except stripe.SignatureVerificationError:
        return False
    return True


def test_a_header_the_sdk_signs_is_accepted_by_both() -> None:
    now = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{now}.{BODY.decode()}", "whsec_new")
    header = f"t={now},v1={signature}"
    assert sdk_accepts(header, "whsec_new")
    assert check(header) == Verified(secret_index=0)


def test_our_signer_matches_the_sdk_byte_for_byte() -> None:
    header = timestamped_hmac_header("whsec_old", BODY, int(time.time()))
    assert sdk_accepts(header, "whsec_old")
    assert check(header) == Verified(secret_index=1)  # the old secret, still accepted, is counted


@pytest.mark.parametrize("tamper", [b" ", b"x"])
def test_a_changed_body_fails_in_both(tamper: bytes) -> None:
    header = timestamped_hmac_header("whsec_new", BODY, int(time.time()))
    assert not sdk_accepts(header, "whsec_new", BODY + tamper)
    with pytest.raises(SignatureError) as raised:
        check(header, body=BODY + tamper)
    assert raised.value.code == "bad_signature"


def test_several_v1_values_match_if_any_does() -> None:
    now = int(time.time())
    good = timestamped_hmac_header("whsec_new", BODY, now).split("v1=")[1]
    header = f"t={now},v1={'0' * 64},v0=ignored,v1={good}"
    assert sdk_accepts(header, "whsec_new")
    assert check(header).secret_index == 0


def test_a_future_timestamp_the_sdk_accepts_is_refused_here() -> None:
    future = int(time.time()) + 3600
    header = timestamped_hmac_header("whsec_new", BODY, future)
    assert sdk_accepts(header, "whsec_new")  # stripe-python only bounds the past
    with pytest.raises(SignatureError) as raised:
        check(header)
    assert raised.value.code == "stale_timestamp"


def test_an_old_timestamp_is_refused_by_both() -> None:
    old = int(time.time()) - 301
    header = timestamped_hmac_header("whsec_new", BODY, old)
    assert not sdk_accepts(header, "whsec_new")
    with pytest.raises(SignatureError):
        check(header)


def test_only_a_handful_of_candidates_are_checked() -> None:
    now = int(time.time())
    good = timestamped_hmac_header("whsec_new", BODY, now).split("v1=")[1]
    header = f"t={now}," + ",".join(["v1=" + "0" * 64] * 10) + f",v1={good}"
    with pytest.raises(SignatureError):
        check(header)  # the eleventh signature is never looked at


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("t=abc,v1=00", "malformed_signature"),
        ("t=1", "malformed_signature"),
        ("v1=00", "missing_timestamp"),
    ],
)
def test_malformed_headers_say_what_is_wrong(header: str, code: str) -> None:
    with pytest.raises(SignatureError) as raised:
        check(header)
    assert raised.value.code == code
