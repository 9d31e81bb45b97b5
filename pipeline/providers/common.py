"""What destination modules read from a canonical event, written once."""

from __future__ import annotations

import hashlib
from typing import Any

from pipeline.config import Config, DestinationConfig
from pipeline.errors import ConfigurationError, ContractError
from pipeline.identity import email_hash


def require_email(event: dict[str, Any]) -> str:
    email = (event.get("contact") or {}).get("email")
    if not email:
        raise ContractError(f"a {event['type']} event without an e-mail cannot be delivered here",
                            reason="no_email")  # fmt: skip
    return str(email)


def names(event: dict[str, Any]) -> tuple[str | None, str | None]:
    contact = event.get("contact") or {}
    return contact.get("first_name"), contact.get("last_name")


def purchased_products(event: dict[str, Any]) -> list[str]:
    for part in ("purchase", "subscription"):
        if event.get(part):
            return [item["product"] for item in event[part].get("items") or []]
    return []


def course_ids(config: Config, event: dict[str, Any]) -> list[str]:
    """Courses the purchased products grant; an unmapped product is a configuration error."""
    courses = []
    for product in purchased_products(event):
        mapped = config.products.get(product)
        if mapped is None:
            raise ConfigurationError(
                f"product {product} is not in the config's [products] table",
                reason="unmapped_product",
            )
        if mapped.course_id is not None:
            courses.append(str(mapped.course_id))
    return courses


def offer_ids(config: Config, event: dict[str, Any]) -> list[str]:
    offers = []
    for product in purchased_products(event):
        mapped = config.products.get(product)
        if mapped is None:
            raise ConfigurationError(
                f"product {product} is not in the config's [products] table",
                reason="unmapped_product",
            )
        if mapped.offer_id:
            offers.append(mapped.offer_id)
    return offers


def tags_for(config: Config, destination: DestinationConfig, event: dict[str, Any]) -> list[str]:
    """Tags from the destination's own `tags` option, the products bought and the event itself."""
    tags = list(destination.options.get("tags") or [])
    for product in purchased_products(event):
        mapped = config.products.get(product)
        if mapped is not None:
            tags.extend(mapped.tags)
    tags.extend((event.get("subscriber") or {}).get("tags") or [])
    return list(dict.fromkeys(tags))


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


def insert_id(idempotency_key: str) -> str:
    """Mixpanel's `$insert_id` allows 36 characters: the first 36 of a hash of our key."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:36]


def analytics_name(event: dict[str, Any]) -> str:
    if event.get("analytics"):
        return str(event["analytics"]["name"])
    return str(event["type"])


def analytics_properties(event: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {"source": event["source"], "provider": event["provider"]}
    purchase = event.get("purchase")
    if purchase:
        properties.update(
            amount=purchase["amount"] / 100, currency=purchase["currency"],
            products=[item["product"] for item in purchase.get("items") or []],
        )  # fmt: skip
    if event.get("analytics"):
        properties.update(event["analytics"].get("properties") or {})
    return properties
