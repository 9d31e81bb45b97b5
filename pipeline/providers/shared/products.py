"""What a purchase grants: its products mapped through the config's `[products]` table."""

from __future__ import annotations

from typing import Any

from pipeline.config.model import Config, DestinationConfig, Product
from pipeline.errors import ConfigurationError


def purchased_products(event: dict[str, Any]) -> list[str]:
    for part in ("purchase", "subscription"):
        if event.get(part):
            return [item["product"] for item in event[part].get("items") or []]
    return []


def mapped_products(config: Config, event: dict[str, Any]) -> list[Product]:
    """The config's entry for every purchased product; an unmapped one is a configuration error."""
    mapped = []
    for product in purchased_products(event):
        found = config.products.get(product)
        if found is None:
            raise ConfigurationError(
                f"product {product} is not in the config's [products] table",
                reason="unmapped_product",
            )
        mapped.append(found)
    return mapped


def course_ids(config: Config, event: dict[str, Any]) -> list[str]:
    """Courses the purchased products grant, each once, in the products' order; an unmapped
    product is a configuration error. Two products of one course (a monthly and an annual plan)
    grant it once: a platform enrolling a new user does not look before creating."""
    found = [str(m.course_id) for m in mapped_products(config, event) if m.course_id is not None]
    return list(dict.fromkeys(found))


def offer_ids(config: Config, event: dict[str, Any]) -> list[str]:
    """Kajabi offers the purchased products grant, each once, in the products' order; an
    unmapped product is a configuration error."""
    return list(dict.fromkeys(m.offer_id for m in mapped_products(config, event) if m.offer_id))


def tags_for(config: Config, destination: DestinationConfig, event: dict[str, Any]) -> list[str]:
    """Tags from the destination's own `tags` option, the products bought and the event itself."""
    tags = list(destination.options.get("tags") or [])
    for product in purchased_products(event):
        mapped = config.products.get(product)
        if mapped is not None:
            tags.extend(mapped.tags)
    tags.extend((event.get("subscriber") or {}).get("tags") or [])
    return list(dict.fromkeys(tags))
