"""X-Thinkific-Hmac-Sha256: hex HMAC-SHA256 of the raw body, keyed with the site's API key."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from pipeline.errors import SignatureError
from pipeline.providers.thinkific.source import SOURCE as THINKIFIC_SOURCE
from pipeline.signatures.base import SignedRequest, Verified
from pipeline.signatures.body_hmac import body_hmac
from tests.support.contexts import received_headers, source_config

SOURCE = source_config(
    THINKIFIC_SOURCE, signing_secrets=("key_new", "key_old"), max_body_bytes=1000
)
BODY = b'{"id":"20190131191810790022472","resource":"enrollment","action":"completed"}'


def check(headers: dict[str, str], body: bytes = BODY) -> Verified:
    request = SignedRequest(body, received_headers(headers), {}, 0.0)
    return THINKIFIC_SOURCE.signature.verify(SOURCE, request)


def test_the_signature_is_a_plain_hmac_sha256_of_the_body_in_hex() -> None:
    # computed independently of our signer, as Thinkific's docs describe it
    expected = hmac.new(b"key_new", BODY, hashlib.sha256).hexdigest()
    assert body_hmac("key_new", BODY) == expected
    assert check({"X-Thinkific-Hmac-Sha256": expected}) == Verified(secret_index=0)


def test_the_previous_key_still_verifies_and_is_reported_and_header_case_is_free() -> None:
    signature = body_hmac("key_old", BODY).upper()
    assert check({"x-thinkific-hmac-sha256": signature}) == Verified(secret_index=1)


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        ({}, BODY, "missing_signature"),
        ({"X-Thinkific-Hmac-Sha256": body_hmac("someone_else", BODY)}, BODY, "bad_signature"),
        ({"X-Thinkific-Hmac-Sha256": body_hmac("key_new", BODY)}, BODY + b" ", "bad_signature"),
        ({"X-Thinkific-Hmac-Sha256": "not-hex"}, BODY, "bad_signature"),
    ],
)
def test_a_missing_foreign_or_stale_signature_is_refused(
    headers: dict[str, str], body: bytes, code: str
) -> None:
    with pytest.raises(SignatureError) as refused:
        check(headers, body)
    assert refused.value.code == code
