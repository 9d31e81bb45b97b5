"""What PostgreSQL can store: `text` holds no NUL character and `jsonb` refuses `\\u0000`.

A U+0000 inside any string a provider sends (a buyer's name, an id) would otherwise make every
write of it fail, the dead letter's included, so the event could never settle. Parsed payloads
and every text or JSON value written to the log go through here; the raw body is stored as
bytes (`bytea`) and stays byte-exact.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

NUL = "\x00"
_ESCAPED_NUL = "\\u0000"  # how json.dumps writes U+0000 (ensure_ascii)
T = TypeVar("T")


def strip_nul(value: T) -> T:
    """`value` with U+0000 removed from every string in it, keys included; other values as is."""
    if isinstance(value, str):
        return value.replace(NUL, "") if NUL in value else value  # type: ignore[return-value]
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [strip_nul(item) for item in value]  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(strip_nul(item) for item in value)  # type: ignore[return-value]
    return value


def json_text(value: Any) -> str:
    """JSON text that a `jsonb` column accepts. The common case costs one substring search."""
    dumped = json.dumps(value, default=str)
    if _ESCAPED_NUL not in dumped:
        return dumped
    # an escaped backslash followed by "u0000" also matches: stripping then changes nothing
    return json.dumps(strip_nul(value), default=lambda found: strip_nul(str(found)))
