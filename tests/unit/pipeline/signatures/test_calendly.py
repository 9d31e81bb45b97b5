"""Calendly's `Calendly-Webhook-Signature: t=…,v1=…`: signed as Calendly documents, checked both ways.

The expected signatures are computed here with `hmac` straight from Calendly's description
(hex HMAC-SHA256 of "<t>." + raw body, signing key as the key), not with our own signing helper.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import pytest

from pipeline.errors import SignatureError
from pipeline.providers.calendly.source import SOURCE as CALENDLY_SOURCE
from pipeline.signatures.base import SignedRequest, Verified
from tests.support.contexts import received_headers, source_config
from tests.support.fixtures import FIXTURES

BODY = (FIXTURES / "calendly" / "invitee.created.json").read_bytes()
SOURCE = source_config(
    CALENDLY_SOURCE,
    signing_secrets=("key-current", "key-previous"),
    api_base="https://api.calendly.com",
    tolerance_seconds=180,
    max_body_bytes=262144,
)
NOW = 1_790_000_000.0


def header(key: str, stamp: int, body: bytes = BODY) -> str:
    digest = hmac.new(key.encode(), str(stamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def check(value: str | None, *, body: bytes = BODY, now: float = NOW) -> Verified:
    headers = received_headers({"Calendly-Webhook-Signature": value} if value is not None else {})
    return CALENDLY_SOURCE.signature.verify(SOURCE, SignedRequest(body, headers, {}, now))


def refused(value: str | None, **kwargs: Any) -> str:
    with pytest.raises(SignatureError) as raised:
        check(value, **kwargs)
    return raised.value.code


def test_a_signature_made_with_the_signing_key_is_accepted() -> None:
    assert check(header("key-current", int(NOW))) == Verified(secret_index=0)


def test_the_previous_key_still_verifies_while_rotating() -> None:
    assert check(header("key-previous", int(NOW) - 10)) == Verified(secret_index=1)


def test_another_key_is_refused() -> None:
    assert refused(header("somebody-elses-key", int(NOW))) == "bad_signature"


def test_a_changed_body_is_refused() -> None:
    assert refused(header("key-current", int(NOW)), body=BODY.replace(b"Camille", b"Mallory")) == (
        "bad_signature"
    )


def test_a_signature_over_another_timestamp_is_refused() -> None:
    signed = header("key-current", int(NOW) - 5).replace(f"t={int(NOW) - 5}", f"t={int(NOW)}")
    assert refused(signed) == "bad_signature"


def test_inside_the_three_minutes_both_ways_it_is_accepted() -> None:
    assert check(header("key-current", int(NOW) - 179)).secret_index == 0
    assert check(header("key-current", int(NOW) + 179)).secret_index == 0


def test_older_than_three_minutes_is_stale() -> None:
    assert refused(header("key-current", int(NOW) - 181)) == "stale_timestamp"


def test_more_than_three_minutes_in_the_future_is_stale_too() -> None:
    assert refused(header("key-current", int(NOW) + 181)) == "stale_timestamp"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        (f"t={int(NOW)}", "malformed_signature"),
        ("v1=" + "0" * 64, "missing_timestamp"),
        ("t=yesterday,v1=" + "0" * 64, "malformed_signature"),
    ],
)
def test_malformed_headers_are_refused_with_their_reason(value: str | None, code: str) -> None:
    assert refused(value) == code


def test_the_real_clock_is_what_counts_in_the_receiver() -> None:
    # the sandbox and Calendly sign with the current time; the same header an hour later is stale
    fresh = header("key-current", int(time.time()))
    assert check(fresh, now=time.time()).secret_index == 0
    assert refused(fresh, now=time.time() + 3600) == "stale_timestamp"
