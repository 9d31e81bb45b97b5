"""A building block: one header carrying an HMAC of the raw body (no timestamp in the scheme).

Thinkific (`X-Thinkific-Hmac-Sha256`, hex) and Acuity (`X-Acuity-Signature`, base64) sign this
way; their modules instantiate it. Without a timestamp there is no staleness check: replays are
caught by the event-id dedupe instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from pipeline.config.model import SourceConfig
from pipeline.errors import SignatureError
from pipeline.signatures.base import SignedRequest, Verified, match_secret, required_header


@dataclass(frozen=True)
class BodyHmac:
    header: str
    encoding: str = "hex"  # or "base64"
    algorithm: str = "sha256"

    def verify(self, source: SourceConfig, request: SignedRequest) -> Verified:
        given = required_header(request, self.header).strip()
        candidate = given.lower() if self.encoding == "hex" else given
        index = match_secret(
            source.signing_secrets,
            [candidate.encode()],
            lambda secret: body_hmac(
                secret, request.body, algorithm=self.algorithm, encoding=self.encoding
            ).encode(),
        )
        if index is None:
            raise SignatureError(
                "bad_signature", f"The {self.header} header matches none of the configured secrets."
            )
        return Verified(secret_index=index)


def body_hmac(secret: str, body: bytes, *, algorithm: str = "sha256", encoding: str = "hex") -> str:
    """HMAC of the raw body alone: Thinkific (hex SHA-256), Acuity (base64 SHA-256), and the
    generic HMAC source, whose algorithm and encoding are configurable."""
    digest = hmac.new(secret.encode("utf-8"), body, getattr(hashlib, algorithm)).digest()
    return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()
