"""Our Standard Webhooks verifier against the reference library (`standardwebhooks`), both ways."""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from pipeline.errors import SignatureError
from pipeline.providers.standard_webhooks.source import SOURCE as STANDARD_WEBHOOKS_SOURCE
from pipeline.signatures.base import MAX_SIGNATURES, SignedRequest, Verified
from pipeline.signatures.standard_webhooks import StandardWebhooks, standard_webhooks_headers
from tests.support.contexts import received_headers, source_config

CURRENT = "whsec_" + base64.b64encode(b"current-secret-of-32-bytes-long!").decode()
PREVIOUS = "whsec_" + base64.b64encode(b"previous-secret-of-32-bytes-lng!").decode()
OTHER = "whsec_" + base64.b64encode(b"somebody-elses-secret-32-bytes!!").decode()
SOURCE = source_config(
    STANDARD_WEBHOOKS_SOURCE, "sw", signing_secrets=(CURRENT, PREVIOUS), max_body_bytes=1000
)
BODY = b'{"id":"ord_1","type":"purchase.completed","occurred_at":"2026-03-01T12:00:00Z","data":{}}'
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def check(headers: dict[str, str], *, body: bytes = BODY, now: float | None = None) -> Verified:
    request = SignedRequest(body, received_headers(headers), {}, now or time.time())
    return StandardWebhooks().verify(SOURCE, request)


def library_headers(secret: str, *, at: int | None = None, msg_id: str = MSG_ID) -> dict[str, str]:
    """Headers exactly as the reference library's own signer produces them."""
    stamp = at or int(time.time())
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(stamp, tz=UTC), BODY.decode())
    # a real sender writes header names as it likes: they are case-insensitive
    return {"Webhook-Id": msg_id, "Webhook-Timestamp": str(stamp), "Webhook-Signature": signature}


def refused(headers: dict[str, str], **kwargs: Any) -> str:
    with pytest.raises(SignatureError) as raised:
        check(headers, **kwargs)
    return raised.value.code


def test_what_the_library_signs_we_accept() -> None:
    assert check(library_headers(CURRENT)) == Verified(secret_index=0)


def test_what_we_sign_the_library_accepts() -> None:
    headers = standard_webhooks_headers(PREVIOUS, MSG_ID, int(time.time()), BODY)
    assert Webhook(PREVIOUS).verify(BODY, headers) == {
        "id": "ord_1",
        "type": "purchase.completed",
        "occurred_at": "2026-03-01T12:00:00Z",
        "data": {},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER).verify(BODY, headers)


def test_the_previous_secret_still_verifies_during_rotation_and_is_counted() -> None:
    assert check(library_headers(PREVIOUS)) == Verified(secret_index=1)


def test_a_sender_rotating_sends_both_signatures_and_either_matches() -> None:
    old, new = library_headers(OTHER), library_headers(PREVIOUS)
    both = {**new, "Webhook-Signature": f"{old['Webhook-Signature']} {new['Webhook-Signature']}"}
    assert check(both).secret_index == 1


def test_an_unknown_secret_is_refused() -> None:
    assert refused(library_headers(OTHER)) == "bad_signature"


@pytest.mark.parametrize("tamper", [b" ", b"x"])
def test_a_changed_body_is_refused(tamper: bytes) -> None:
    assert refused(library_headers(CURRENT), body=BODY + tamper) == "bad_signature"


def test_the_id_is_signed_too() -> None:
    headers = {**library_headers(CURRENT), "Webhook-Id": "msg_another"}
    assert refused(headers) == "bad_signature"


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_timestamps_are_refused_both_ways(offset: int) -> None:
    stamp = int(time.time()) + offset
    assert refused(library_headers(CURRENT, at=stamp)) == "stale_timestamp"


@pytest.mark.parametrize("offset", [-290, 290])
def test_timestamps_within_the_tolerance_are_accepted_both_ways(offset: int) -> None:
    assert check(library_headers(CURRENT, at=int(time.time()) + offset)).secret_index == 0


def test_other_versions_are_ignored_and_alone_do_not_verify() -> None:
    headers = library_headers(CURRENT)
    signature = headers["Webhook-Signature"].split(",", 1)[1]
    assert refused({**headers, "Webhook-Signature": f"v1a,{signature} v2,{signature}"}) == (
        "malformed_signature"
    )
    mixed = f"v1a,{'A' * 88} v2,{signature} v1,{signature}"
    assert check({**headers, "Webhook-Signature": mixed}).secret_index == 0


def test_only_a_handful_of_signatures_are_checked() -> None:
    headers = library_headers(CURRENT)
    bogus = " ".join(["v1," + base64.b64encode(bytes(32)).decode()] * MAX_SIGNATURES)
    flooded = {**headers, "Webhook-Signature": f"{bogus} {headers['Webhook-Signature']}"}
    assert refused(flooded) == "bad_signature"  # the sixth signature is never looked at
    within = " ".join([*bogus.split(" ")[:-1], headers["Webhook-Signature"]])
    assert check({**headers, "Webhook-Signature": within}).secret_index == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"Webhook-Id": ""}, "missing_signature"),
        ({"Webhook-Id": "msg.with.dots"}, "malformed_signature"),
        ({"Webhook-Timestamp": ""}, "missing_timestamp"),
        ({"Webhook-Timestamp": "soon"}, "malformed_signature"),
        ({"Webhook-Signature": ""}, "missing_signature"),
        ({"Webhook-Signature": "v1,not base64!"}, "malformed_signature"),
    ],
)
def test_malformed_headers_say_what_is_wrong(change: dict[str, str], code: str) -> None:
    assert refused({**library_headers(CURRENT), **change}) == code


def test_a_secret_that_is_not_base64_never_matches_and_never_breaks_the_others() -> None:
    broken = replace(SOURCE, signing_secrets=("whsec_a", CURRENT))
    request = SignedRequest(BODY, received_headers(library_headers(CURRENT)), {}, time.time())
    assert StandardWebhooks().verify(broken, request).secret_index == 1
