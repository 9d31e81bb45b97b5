"""The generic HMAC scheme in the shapes creators meet: GitHub's `sha256=<hex>` and a timestamped
base64 signature, each computed here independently of `pipeline.signatures`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import pytest

from pipeline.config.model import SourceConfig
from pipeline.errors import SignatureError
from pipeline.providers.generic_hmac.source import SOURCE as GENERIC_HMAC_SOURCE
from pipeline.providers.generic_hmac.source import GenericHmacOptions
from pipeline.signatures.base import SignedRequest, Verified
from pipeline.signatures.generic_hmac import GenericHmac
from tests.support.contexts import received_headers, source_config

BODY = b'{"id":"pv_1","type":"analytics.page_view","occurred_at":"2026-03-01T12:00:00Z"}'
SECRETS = ("new-secret", "old-secret")


def source(**options: Any) -> SourceConfig:
    return source_config(
        GENERIC_HMAC_SOURCE,
        "app",
        signing_secrets=SECRETS,
        max_body_bytes=1000,
        options=GenericHmacOptions().load(options),
    )


GITHUB = source(signature_header="X-Hub-Signature-256", prefix="sha256=")
STAMPED = source(
    signature_header="X-Signature",
    algorithm="sha512",
    encoding="base64",
    signed="timestamp.body",
    timestamp_header="X-Signature-Timestamp",
)


def github_signature(secret: str, body: bytes = BODY) -> str:
    # docs.github.com "Validating webhook deliveries": HMAC-SHA256 hex digest, prefixed sha256=
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def stamped_headers(secret: str, at: int, body: bytes = BODY) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha512).digest()
    return {"X-Signature": base64.b64encode(digest).decode(), "X-Signature-Timestamp": str(at)}


def check(src: SourceConfig, headers: dict[str, str], body: bytes = BODY) -> Verified:
    return GenericHmac().verify(
        src, SignedRequest(body, received_headers(headers), {}, time.time())
    )


def refused(src: SourceConfig, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(SignatureError) as raised:
        check(src, headers, body)
    return raised.value.code


def test_a_github_style_signature_is_accepted() -> None:
    assert check(GITHUB, {"X-Hub-Signature-256": github_signature("new-secret")}) == Verified(0)


def test_the_old_secret_verifies_during_rotation() -> None:
    assert check(GITHUB, {"x-hub-signature-256": github_signature("old-secret")}).secret_index == 1


def test_hex_is_compared_without_regard_to_case() -> None:
    upper = "sha256=" + github_signature("new-secret").removeprefix("sha256=").upper()
    assert check(GITHUB, {"X-Hub-Signature-256": upper}).secret_index == 0


def test_a_changed_body_or_an_unknown_secret_is_refused() -> None:
    good = {"X-Hub-Signature-256": github_signature("new-secret")}
    assert refused(GITHUB, good, BODY + b" ") == "bad_signature"
    assert refused(GITHUB, {"X-Hub-Signature-256": github_signature("guess")}) == "bad_signature"


def test_a_missing_prefix_or_header_says_so() -> None:
    bare = github_signature("new-secret").removeprefix("sha256=")
    assert refused(GITHUB, {"X-Hub-Signature-256": bare}) == "malformed_signature"
    assert refused(GITHUB, {}) == "missing_signature"


def test_a_base64_timestamped_signature_is_accepted() -> None:
    assert check(STAMPED, stamped_headers("old-secret", int(time.time()))).secret_index == 1


def test_the_timestamp_is_part_of_what_is_signed() -> None:
    now = int(time.time())
    headers = {**stamped_headers("new-secret", now), "X-Signature-Timestamp": str(now - 1)}
    assert refused(STAMPED, headers) == "bad_signature"


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_timestamps_are_refused_both_ways(offset: int) -> None:
    headers = stamped_headers("new-secret", int(time.time()) + offset)
    assert refused(STAMPED, headers) == "stale_timestamp"


def test_a_missing_timestamp_is_refused() -> None:
    headers = stamped_headers("new-secret", int(time.time()))
    del headers["X-Signature-Timestamp"]
    assert refused(STAMPED, headers) == "missing_timestamp"


def test_a_body_only_signature_does_not_pass_as_timestamped() -> None:
    digest = hmac.new(b"new-secret", BODY, hashlib.sha512).digest()
    headers = {
        "X-Signature": base64.b64encode(digest).decode(),
        "X-Signature-Timestamp": str(int(time.time())),
    }
    assert refused(STAMPED, headers) == "bad_signature"


@pytest.mark.parametrize("algorithm", ["sha1", "sha512"])
def test_other_algorithms(algorithm: str) -> None:
    src = source(signature_header="X-Sig", algorithm=algorithm)
    digest = hmac.new(b"new-secret", BODY, getattr(hashlib, algorithm)).hexdigest()
    assert check(src, {"X-Sig": digest}).secret_index == 0
    wrong = hmac.new(b"new-secret", BODY, hashlib.sha256).hexdigest()
    assert refused(src, {"X-Sig": wrong}) == "bad_signature"
