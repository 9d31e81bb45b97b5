"""Who an event is about, as destinations read it: the e-mail, the names, a masked address."""

from __future__ import annotations

from typing import Any

from pipeline.errors import ContractError


def require_email(event: dict[str, Any]) -> str:
    email = (event.get("contact") or {}).get("email")
    if not email:
        raise ContractError(
            f"a {event['type']} event without an e-mail cannot be delivered here", reason="no_email"
        )
    return str(email)


def names(event: dict[str, Any]) -> tuple[str | None, str | None]:
    contact = event.get("contact") or {}
    return contact.get("first_name"), contact.get("last_name")


def full_name(event: dict[str, Any]) -> str:
    """The first and last names joined; empty when the event names neither."""
    return " ".join(part for part in names(event) if part)


def masked_email(address: str) -> str:
    """An address a person can recognise but a reader cannot use: `a***@example.com`."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def display_name(event: dict[str, Any]) -> str:
    """Who an event is about, for humans: the name, else the masked address, never the raw one."""
    full = full_name(event)
    if full:
        return full
    email = (event.get("contact") or {}).get("email")
    return masked_email(email) if email else "someone"
