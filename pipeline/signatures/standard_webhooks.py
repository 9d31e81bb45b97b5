"""Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> …`.

Spec (standard-webhooks/standard-webhooks `spec/standard-webhooks.md`; reference verifier
`libraries/python/standardwebhooks/webhooks.py`): the signed content is
"<webhook-id>.<webhook-timestamp>.<raw body>", HMAC-SHA256 keyed with the base64-decoded bytes of
the `whsec_` secret, sent base64 as `v1,<sig>` in a space-delimited list (one per secret while the
sender rotates; `v1a` ed25519 signatures and other versions are skipped). The reference library
refuses timestamps more than 5 minutes old or new; we use the source's `tolerance_seconds`
(default 300). The id must not contain "." (the spec's rule: it would blur the signed content).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from functools import cache

from pipeline.config.model import SourceConfig
from pipeline.errors import SignatureError
from pipeline.signatures.base import (
    MAX_SIGNATURES,
    SignedRequest,
    Verified,
    check_timestamp,
    match_secret,
    required_header,
)

log = logging.getLogger(__name__)

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
_ID = re.compile(r"^[^.\s]{1,255}$")
DIGEST_BYTES = 32  # a v1 signature is one SHA-256 digest; anything else cannot match
_NO_KEY = b""  # stands for a secret that does not decode: equal to no 32-byte candidate
# other versions (v1a) may be interleaved: read a few more items than we compare
MAX_ITEMS = MAX_SIGNATURES * 3


@cache
def _key(secret: str) -> bytes:
    try:
        return standard_webhooks_key(secret)
    except ValueError:
        log.warning("a configured Standard Webhooks secret is not whsec_<base64>; it never matches")
        return _NO_KEY


class StandardWebhooks:
    def verify(self, source: SourceConfig, request: SignedRequest) -> Verified:
        msg_id = required_header(request, ID_HEADER)
        if not _ID.match(msg_id):
            raise SignatureError(
                "malformed_signature",
                f"The {ID_HEADER} header must be 1-255 characters without '.' or spaces.",
            )
        timestamp = check_timestamp(
            request.headers.get(TIMESTAMP_HEADER),
            request.now,
            source.tolerance_seconds,
            TIMESTAMP_HEADER,
        )
        candidates = parse_signatures(required_header(request, SIGNATURE_HEADER))

        def sign(key: bytes) -> bytes:
            if not key:
                return _NO_KEY
            return standard_webhooks_signature(key, msg_id, timestamp, request.body)

        index = match_secret([_key(s) for s in source.signing_secrets], candidates, sign)
        if index is None:
            raise SignatureError(
                "bad_signature",
                f"The {SIGNATURE_HEADER} header matches none of the configured secrets.",
            )
        return Verified(secret_index=index)


def parse_signatures(value: str) -> list[bytes]:
    """The decoded `v1` signatures, at most MAX_SIGNATURES of them, in the order sent."""
    found: list[bytes] = []
    for item in value.split(" ", MAX_ITEMS)[:MAX_ITEMS]:
        version, _, encoded = item.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            decoded = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if len(decoded) == DIGEST_BYTES:
            found.append(decoded)
        if len(found) == MAX_SIGNATURES:
            break
    if not found:
        raise SignatureError(
            "malformed_signature", f"The {SIGNATURE_HEADER} header has no v1 signature."
        )
    return found


STANDARD_WEBHOOKS_PREFIX = "whsec_"


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64-decoded bytes after `whsec_`.

    Decoded like the reference library (`standardwebhooks.Webhook`): padding is added, so an
    unpadded secret works too. Raises ValueError (naming no part of the secret) when it is not base64.
    """
    encoded = secret.removeprefix(STANDARD_WEBHOOKS_PREFIX)
    try:
        key = base64.b64decode(encoded + "==")
    except ValueError:
        raise ValueError("a Standard Webhooks secret is whsec_ followed by base64") from None
    if not key:
        raise ValueError("a Standard Webhooks secret may not be empty")
    return key


def standard_webhooks_signature(
    key: bytes, msg_id: str, timestamp: int | str, body: bytes
) -> bytes:
    """The raw HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<raw body>"."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def standard_webhooks_headers(
    secret: str, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers a Standard Webhooks sender attaches (signature as `v1,<base64>`)."""
    digest = standard_webhooks_signature(standard_webhooks_key(secret), msg_id, timestamp, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
