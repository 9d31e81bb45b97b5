"""Handles: what an event can be found by, without the log keeping a clear e-mail index.

An e-mail address is stored as `email:` + HMAC-SHA256 of its normalized form under a key only
this deployment holds (STACKWIRE_HASH_KEY, or a key file made once in the data directory), so a
copy of the database cannot be searched for an address by hashing guesses. Business ids (a
checkout session, a payment intent, a PayPal capture, a subscription, a customer) are stored as
`id:` + the id; they are the provider's own opaque ids, not personal data.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.log.identity import normalize_email
from pipeline.settings import Settings

KEY_FILE = "hash.key"
MAX_HANDLES = 32


def handle_key(settings: Settings) -> bytes:
    if settings.hash_key:
        return settings.hash_key.encode()
    return _key_file(settings.data_dir.resolve() / KEY_FILE)


@cache
def _key_file(path: Path) -> bytes:
    """Made once, readable by its owner only; every process of the deployment reads the same."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if not key:  # another process created it and has not written it yet
        raise RuntimeError(f"{path} is empty; remove it and start again")
    return key.encode()


def email_handle(key: bytes, address: str) -> str:
    digest = hmac.new(key, normalize_email(address).encode(), hashlib.sha256).hexdigest()
    return f"email:{digest[:40]}"


def id_handle(value: str) -> str:
    return f"id:{value}"


def handles_of(document: Mapping[str, Any], key: bytes) -> list[str]:
    """Every handle of a canonical event: the contact's e-mail, its provider ids, the ids of the
    purchase, payment and subscription, and the object named in the event's key."""
    found: list[str] = []
    contact = document.get("contact") or {}
    if contact.get("email"):
        with contextlib.suppress(ValueError):  # not an address: nothing to find it by
            found.append(email_handle(key, contact["email"]))
    ids = [value for value in (contact.get("external_ids") or {}).values() if value]
    for part in ("purchase", "subscription", "booking", "enrollment", "subscriber"):
        section = document.get(part) or {}
        ids += [section.get("id"), section.get("payment_id")]
    # "stripe:ch_123:refunded" names the charge a refund is about
    ids += document.get("key", "").split(":")[1:2]
    for value in ids:
        if isinstance(value, str) and value:
            found.append(id_handle(value))
    return list(dict.fromkeys(found))[:MAX_HANDLES]
