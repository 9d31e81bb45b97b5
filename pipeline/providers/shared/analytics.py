"""Analytics destinations (Mixpanel, GA4): what they are, and what they read from a canonical event."""

from __future__ import annotations

import hashlib
from typing import Any

from pipeline.log.identity import email_hash
from pipeline.providers.base import DestinationProvider
from schemas.canonical import to_major_units


class AnalyticsDestination(DestinationProvider):
    """A destination that records events in batches: its one action, on the analytics lane."""

    kind = "analytics"
    actions = {"track": "analytics"}


def distinct_id(event: dict[str, Any]) -> str:
    """Who an analytics event is about: the contact's hash, never the raw address."""
    if event.get("analytics"):
        return str(event["analytics"]["distinct_id"])
    contact = event.get("contact") or {}
    if contact.get("email"):
        return email_hash(contact["email"])[:32]
    for value in (contact.get("external_ids") or {}).values():
        return str(value)
    return hashlib.sha256(event["key"].encode()).hexdigest()[:32]


def analytics_name(event: dict[str, Any]) -> str:
    if event.get("analytics"):
        return str(event["analytics"]["name"])
    return str(event["type"])


def analytics_properties(event: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {"source": event["source"], "provider": event["provider"]}
    purchase = event.get("purchase")
    if purchase:
        properties.update(
            amount=to_major_units(purchase["amount"], purchase["currency"]),
            currency=purchase["currency"],
            products=[item["product"] for item in purchase.get("items") or []],
        )
    booking = event.get("booking")
    if booking:
        # the instant in UTC and the attendee's own zone and wall clock, never only an offset
        properties.update(
            {
                f"booking_{name}": booking[name]
                for name in (
                    "id",
                    "starts_at",
                    "ends_at",
                    "timezone",
                    "local_start",
                    "status",
                    "rescheduled_from",
                )
                if booking.get(name) is not None
            }
        )
    if event.get("analytics"):
        properties.update(event["analytics"].get("properties") or {})
    return properties
