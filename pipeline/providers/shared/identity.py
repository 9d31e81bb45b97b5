"""How a source names a webhook: the id and type the body carries, or a digest of the body."""

from __future__ import annotations

import hashlib
from typing import Any

from pipeline.errors import BadPayload


def required_text(payload: Any, field: str, code: str, message: str) -> str:
    """`payload[field]` when the body is an object with text there; else the receiver's 400."""
    if not isinstance(payload, dict) or not isinstance(payload.get(field), str):
        raise BadPayload(code, message)
    found: str = payload[field]
    return found


def body_id(prefix: str, body: bytes) -> str:
    """An event id for providers that send none: a digest of the raw body, so a byte-identical
    re-post is a duplicate and any other body is a new event (never an id conflict)."""
    return f"{prefix}{hashlib.sha256(body).hexdigest()[:40]}"
