"""`t=<unix>,v1=<hex>[,v1=<hex>…]` over "<t>.<raw body>", HMAC-SHA256 with the secret as UTF-8.

Stripe (`Stripe-Signature`, stripe-python `_webhook.py`) and Calendly (`Calendly-Webhook-Signature`,
developer.calendly.com webhook-signatures) both sign this way. Unlike stripe-python's helper we
refuse timestamps from the future as well as the past.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

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


@dataclass(frozen=True)
class TimestampedHmac:
    header: str

    def verify(self, source: SourceConfig, request: SignedRequest) -> Verified:
        value = required_header(request, self.header)
        timestamp, signatures = parse_header(value, self.header)
        check_timestamp(timestamp, request.now, source.tolerance_seconds, self.header)
        index = match_secret(
            source.signing_secrets,
            signatures,
            lambda secret: timestamped_hmac_hex(secret, timestamp, request.body).encode(),
        )
        if index is None:
            raise SignatureError(
                "bad_signature", f"The {self.header} header matches none of the configured secrets."
            )
        return Verified(secret_index=index)


def parse_header(value: str, header: str) -> tuple[str, list[bytes]]:
    timestamp = ""
    signatures: list[bytes] = []
    for item in value.split(",")[: MAX_SIGNATURES + 4]:
        key, _, item_value = item.strip().partition("=")
        if key == "t":
            timestamp = item_value
        elif key == "v1" and item_value:
            signatures.append(item_value.encode())
    if not signatures:
        raise SignatureError("malformed_signature", f"The {header} header has no v1 signature.")
    return timestamp, signatures


def timestamped_hmac_hex(secret: str, timestamp: int | str, body: bytes) -> str:
    """Stripe and Calendly: hex HMAC-SHA256 of "<t>.<raw body>", the secret used as UTF-8 bytes."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def timestamped_hmac_header(secret: str, body: bytes, timestamp: int) -> str:
    """The `t=…,v1=…` header value a provider would send."""
    return f"t={timestamp},v1={timestamped_hmac_hex(secret, timestamp, body)}"
