"""Teachable signs nothing documented: a `?key=` secret by default, an HMAC header when configured."""

from __future__ import annotations

import pytest

from pipeline.config.model import SourceConfig
from pipeline.errors import SignatureError
from pipeline.providers.teachable.source import SOURCE as TEACHABLE_SOURCE
from pipeline.signatures.base import SignedRequest, Verified
from pipeline.signatures.body_hmac import body_hmac
from tests.support.contexts import received_headers, source_config

BODY = b'[{"type":"Enrollment.completed","id":1,"hook_event_id":2}]'


def source(**options: str) -> SourceConfig:
    return source_config(
        TEACHABLE_SOURCE,
        signing_secrets=("s3cret-new", "s3cret-old"),
        max_body_bytes=1000,
        options={"signature_header": None, "signature_encoding": "hex", **options},
    )


def check(src: SourceConfig, headers: dict[str, str], query: dict[str, str]) -> Verified:
    request = SignedRequest(BODY, received_headers(headers), query, 0.0)
    return TEACHABLE_SOURCE.signature.verify(src, request)


def test_by_default_the_url_secret_is_what_authenticates() -> None:
    assert check(source(), {}, {"key": "s3cret-old"}) == Verified(secret_index=1)
    with pytest.raises(SignatureError) as refused:
        check(source(), {}, {"key": "guess"})
    assert refused.value.code == "bad_signature"
    with pytest.raises(SignatureError) as missing:
        check(source(), {"Teachable-Signature": body_hmac("s3cret-new", BODY)}, {})
    assert missing.value.code == "missing_signature"


def test_a_configured_header_switches_to_an_hmac_of_the_body() -> None:
    hmac_source = source(signature_header="Teachable-Signature")
    signed = {"Teachable-Signature": body_hmac("s3cret-new", BODY)}
    assert check(hmac_source, signed, {}) == Verified(secret_index=0)
    with pytest.raises(SignatureError):
        check(hmac_source, {}, {"key": "s3cret-new"})  # the URL secret no longer suffices


def test_the_hmac_encoding_is_configurable_too() -> None:
    hmac_source = source(signature_header="X-Signature", signature_encoding="base64")
    signed = {"X-Signature": body_hmac("s3cret-old", BODY, encoding="base64")}
    assert check(hmac_source, signed, {}) == Verified(secret_index=1)
