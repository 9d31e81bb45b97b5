"""How providers sign webhooks, as pure functions.

The receiver's schemes (`receivers.schemes`) verify with these; the simulator and the sandbox
sign with them, so both ends of every test speak exactly the same scheme.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def timestamped_hmac_hex(secret: str, timestamp: int | str, body: bytes) -> str:
    """Stripe and Calendly: hex HMAC-SHA256 of "<t>.<raw body>", the secret used as UTF-8 bytes."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def timestamped_hmac_header(secret: str, body: bytes, timestamp: int) -> str:
    """The `t=…,v1=…` header value a provider would send."""
    return f"t={timestamp},v1={timestamped_hmac_hex(secret, timestamp, body)}"


def body_hmac(secret: str, body: bytes, *, algorithm: str = "sha256", encoding: str = "hex") -> str:
    """HMAC of the raw body alone: Thinkific (hex SHA-256), Acuity (base64 SHA-256), and the
    generic HMAC source, whose algorithm and encoding are configurable."""
    digest = hmac.new(secret.encode("utf-8"), body, getattr(hashlib, algorithm)).digest()
    return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()
