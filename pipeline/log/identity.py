"""One canonical contact per person: e-mail normalization, the matching hash, the identity graph.

Matching uses a normalized address (trimmed, lower-cased, `+tag` removed; Gmail's dots ignored as
Gmail documents) hashed with SHA-256; destinations still receive the address as the person typed
it. Logs and analytics carry the hash, never the address.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, text

# Gmail ignores dots in the local part and treats googlemail.com as gmail.com
# (support.google.com/mail/answer/7436150); other providers do not promise that, so only
# sub-addressing (`+tag`, RFC 5233, honoured by the major providers) is stripped for them.
_DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def normalize_email(address: str) -> str:
    local, at, domain = address.strip().lower().rpartition("@")
    if not at or not local or not domain:
        raise ValueError("not an e-mail address")
    local = local.split("+", 1)[0] or local
    if domain in _DOTLESS_DOMAINS:
        domain = _DOTLESS_DOMAINS[domain]
        local = local.replace(".", "")
    return f"{local}@{domain}"


def email_hash(address: str) -> str:
    return hashlib.sha256(normalize_email(address).encode()).hexdigest()


UPSERT_CONTACT = text(
    """
    INSERT INTO contacts (email_hash, email, first_name, last_name)
    VALUES (:hash, :email, :first, :last)
    ON CONFLICT (email_hash) DO UPDATE SET
        first_name = COALESCE(EXCLUDED.first_name, contacts.first_name),
        last_name = COALESCE(EXCLUDED.last_name, contacts.last_name),
        updated_at = now()
    RETURNING id
    """
)
LINK_IDENTITY = text(
    """
    INSERT INTO contact_identities (contact_id, kind, value)
    VALUES (:contact_id, :kind, :value)
    ON CONFLICT (kind, value) DO NOTHING
    """
)


def resolve_contact(connection: Connection, contact: Mapping[str, Any] | None) -> int | None:
    """Upserts the contact by its normalized hash and links its provider ids; None without e-mail."""
    if not contact or not contact.get("email"):
        return None
    address = contact["email"]
    contact_id: int = connection.execute(
        UPSERT_CONTACT,
        {
            "hash": email_hash(address),
            "email": address.strip(),
            "first": contact.get("first_name"),
            "last": contact.get("last_name"),
        },
    ).scalar_one()
    links = [
        {"contact_id": contact_id, "kind": kind, "value": value}
        for kind, value in (contact.get("external_ids") or {}).items()
        if value
    ]
    if links:
        connection.execute(LINK_IDENTITY, links)
    return contact_id
