"""Acuity's `X-Acuity-Signature`: base64 HMAC-SHA256 of the raw form body, keyed with the API key.

Signatures are computed here with `hmac` + `base64` exactly as Acuity's PHP sample does
(`base64_encode(hash_hmac('sha256', $body, $secret, true))`), not with our own signing helper.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from pipeline.errors import SignatureError
from pipeline.providers.acuity.source import SOURCE as ACUITY_SOURCE
from pipeline.signatures.base import SignedRequest, Verified
from tests.support.contexts import received_headers, source_config
from tests.support.fixtures import FIXTURES

BODY = (FIXTURES / "acuity" / "scheduled.form").read_bytes()
SOURCE = source_config(
    ACUITY_SOURCE,
    signing_secrets=("api-key-current", "api-key-previous"),
    api_base="https://acuityscheduling.com/api/v1",
    max_body_bytes=262144,
)


def digest(key: str, body: bytes = BODY) -> bytes:
    return hmac.new(key.encode(), body, hashlib.sha256).digest()


def check(value: str | None, *, body: bytes = BODY) -> Verified:
    headers = received_headers({"X-Acuity-Signature": value} if value is not None else {})
    return ACUITY_SOURCE.signature.verify(SOURCE, SignedRequest(body, headers, {}, 0.0))


def refused(value: str | None, **kwargs: Any) -> str:
    with pytest.raises(SignatureError) as raised:
        check(value, **kwargs)
    return raised.value.code


def test_a_base64_signature_with_the_api_key_is_accepted() -> None:
    assert check(base64.b64encode(digest("api-key-current")).decode()) == Verified(0)


def test_a_previous_api_key_still_verifies_while_rotating() -> None:
    assert check(base64.b64encode(digest("api-key-previous")).decode()) == Verified(1)


def test_the_same_digest_written_in_hex_is_refused() -> None:
    assert refused(digest("api-key-current").hex()) == "bad_signature"


def test_another_key_is_refused() -> None:
    assert refused(base64.b64encode(digest("not-the-api-key")).decode()) == "bad_signature"


def test_a_changed_body_is_refused() -> None:
    signed = base64.b64encode(digest("api-key-current")).decode()
    assert refused(signed, body=BODY.replace(b"54321", b"54322")) == "bad_signature"


def test_base64_is_compared_exactly_not_case_folded() -> None:
    signed = base64.b64encode(digest("api-key-current")).decode()
    assert signed != signed.swapcase()
    assert refused(signed.swapcase()) == "bad_signature"


def test_surrounding_whitespace_from_a_proxy_is_tolerated() -> None:
    assert check(" " + base64.b64encode(digest("api-key-current")).decode() + " ").secret_index == 0


@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_signature_is_refused(value: str | None) -> None:
    assert refused(value) == "missing_signature"
