"""How providers sign webhooks, as pure functions.

The receiver's schemes (`receivers.schemes`) verify with these; the simulator and the sandbox
sign with them, so both ends of every test speak exactly the same scheme.
"""

from __future__ import annotations

import hashlib
import hmac


def timestamped_hmac_hex(secret: str, timestamp: int | str, body: bytes) -> str:
    """Stripe and Calendly: hex HMAC-SHA256 of "<t>.<raw body>", the secret used as UTF-8 bytes."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def timestamped_hmac_header(secret: str, body: bytes, timestamp: int) -> str:
    """The `t=…,v1=…` header value a provider would send."""
    return f"t={timestamp},v1={timestamped_hmac_hex(secret, timestamp, body)}"
