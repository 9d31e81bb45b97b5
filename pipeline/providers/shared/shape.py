"""Small builders every provider module uses to shape canonical events (schemas.canonical)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.providers.shared.instants import iso_utc
from schemas.canonical import CANONICAL_VERSION


def split_name(full: str | None) -> tuple[str | None, str | None]:
    if not full or not full.strip():
        return None, None
    first, _, last = full.strip().partition(" ")
    return first, (last.strip() or None)


def contact(
    email: str | None,
    *,
    name: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    external_ids: dict[str, str] | None = None,
    client_id: str | None = None,
) -> dict[str, Any]:
    if name and not (first_name or last_name):
        first_name, last_name = split_name(name)
    return {
        "email": email.strip() if email else None,
        "first_name": first_name,
        "last_name": last_name,
        "external_ids": {k: v for k, v in (external_ids or {}).items() if v},
        "client_id": client_id,
    }


def event(
    canonical_type: str,
    *,
    key: str,
    source: str,
    provider: str,
    occurred_at: datetime | float | int,
    **parts: Any,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": canonical_type,
        "version": CANONICAL_VERSION,
        "key": key,
        "source": source,
        "provider": provider,
        "occurred_at": iso_utc(occurred_at),
    }
    document.update({name: value for name, value in parts.items() if value is not None})
    return document
