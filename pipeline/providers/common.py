"""What destination modules read from a canonical event, written once."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError

from pipeline.config import Config, DestinationConfig
from pipeline.errors import ConfigurationError, ContractError, RetryableError
from pipeline.identity import email_hash
from schemas.canonical import to_major_units

if TYPE_CHECKING:
    import redis


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


def masked_email(address: str) -> str:
    """An address a person can recognise but a reader cannot use: `a***@example.com`."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def display_name(event: dict[str, Any]) -> str:
    """Who an event is about, for humans: the name, else the masked address, never the raw one."""
    first, last = names(event)
    full = " ".join(part for part in (first, last) if part)
    if full:
        return full
    email = (event.get("contact") or {}).get("email")
    return masked_email(email) if email else "someone"


# -- batched destinations ------------------------------------------------------------------------

# a flush must end well inside the task's soft time limit: what is not sent by then waits a moment
SEND_BUDGET_SECONDS = 30.0


def budget_spent(started: float, budget: float) -> RetryableError | None:
    """The error for items left unsent once a batch has used its time (`time.monotonic()` based)."""
    if time.monotonic() - started <= budget:
        return None
    return RetryableError(
        "the batch ran out of time; the rest goes in the next flush",
        retry_after=0.0,
        reason="batch_time_budget",
    )


def settle_batch(
    results: dict[int, dict[str, Any] | Exception],
) -> dict[int, dict[str, Any] | Exception]:
    """Per-item results, unless every item failed with one and the same error from the
    destination itself (down, rate limited, credentials refused): that is raised for the whole
    batch, so the circuit breaker and the shared rate-limit pause see it."""
    errors = {id(value): value for value in results.values()}
    only = next(iter(errors.values()), None)
    if len(errors) == 1 and isinstance(only, RetryableError | ConfigurationError):
        raise only
    return results


# -- shared by the e-mail tools (Mailchimp, Kit, ActiveCampaign) --------------------------------

WALL_CLOCK_FORMAT = "%Y-%m-%d %H:%M:%S"
ID_CACHE_SECONDS = 86_400


def body_id(prefix: str, body: bytes) -> str:
    """An event id for providers that send none: a digest of the raw body, so a byte-identical
    re-post is a duplicate and any other body is a new event (never an id conflict)."""
    return f"{prefix}{hashlib.sha256(body).hexdigest()[:40]}"


def validate_zone(name: str) -> None:
    """A marshmallow validator for options naming a time zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("Not an IANA time zone, like 'UTC' or 'America/New_York'.") from None


def wall_clock(value: Any, zone: str, field: str) -> datetime:
    """An instant from a provider timestamp: ISO 8601 with an offset as it is; a naive
    "YYYY-MM-DD HH:MM:SS" (Mailchimp's `fired_at`) read on the wall clock of `zone`."""
    if not isinstance(value, str):
        raise ContractError(f"the payload's {field} is missing", reason=f"no_{field}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ContractError(
            f"the payload's {field} is not a date and time", reason=f"bad_{field}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment


@dataclass(frozen=True)
class IdCache:
    """A provider's ids by name (tag name -> tag id) in Redis, shared by every worker. The map
    expires a day after its last addition, and a destination forgets an id the tool no longer
    knows (a 404), so a tag renamed or deleted in the tool is looked up again."""

    client: redis.Redis
    key: str

    @classmethod
    def of(cls, client: redis.Redis, destination: DestinationConfig, kind: str) -> IdCache:
        # the account is part of the key: another api_base is another set of ids
        account = hashlib.sha256((destination.api_base or "").encode()).hexdigest()[:12]
        return cls(client, f"stackwire:ids:{destination.name}:{account}:{kind}")

    def get(self, name: str) -> str | None:
        found = self.client.hget(self.key, name)
        return found.decode() if isinstance(found, bytes) else found

    def put(self, found: Mapping[str, str]) -> None:
        if found:
            entries: Any = dict(found)  # redis-py types its mapping keys invariantly
            self.client.hset(self.key, mapping=entries)
            self.client.expire(self.key, ID_CACHE_SECONDS)

    def forget(self, name: str) -> None:
        self.client.hdel(self.key, name)
