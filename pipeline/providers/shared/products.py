"""What a purchase grants: its products mapped through the config's `[products]` table."""

from __future__ import annotations

from typing import Any

from pipeline.config.model import Config, DestinationConfig
from pipeline.errors import ConfigurationError


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
