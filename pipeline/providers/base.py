"""What a provider module declares: a source (webhooks in) and/or a destination (actions out).

A provider is data plus a few small functions. The receiver only needs the data (signature
scheme, body format, where the event id lives, which lane each event type runs on); the tasks
call `verify`, `fetch` and `canonicalize` for sources and `perform` for destinations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl

from marshmallow import Schema

from pipeline.errors import BadPayload
from pipeline.log.events import StoredEvent
from pipeline.storable import NUL, strip_nul

if TYPE_CHECKING:  # the config holds provider objects: types only, no import cycle
    import redis
    import requests

    from pipeline.config.model import Config, DestinationConfig, SourceConfig
    from pipeline.signatures.base import SignatureScheme

MAX_JSON_DEPTH = 32


@dataclass(frozen=True)
class Identified:
    external_id: str
    provider_type: str


@dataclass(frozen=True)
class Fetched:
    """The full object behind a webhook (webhooks are pointers) and where it stands in time."""

    object: dict[str, Any]
    object_key: str
    version: int


@dataclass(frozen=True)
class Verdict:
    """What verify or canonicalize decided when the answer is not simply 'go on'."""

    outcome: str  # "wait" | "ignore" | "reject"
    reason: str


@dataclass
class SourceContext:
    source: SourceConfig
    http: requests.Session
    redis: redis.Redis
    now: float


@dataclass
class DestinationContext:
    destination: DestinationConfig
    config: Config
    http: requests.Session
    redis: redis.Redis
    now: float
    exchanges: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeliveryRef:
    id: int
    action: str
    verb: str
    idempotency_key: str
    attempt: int


# one delivery's result, or the error that fails only that delivery
Outcome = dict[str, Any] | Exception
# the deliveries a batched destination claimed together, each with its canonical event
Batch = list[tuple[DeliveryRef, dict[str, Any]]]


def parse_json(body: bytes) -> Any:
    """JSON, refusing a bomb of brackets: the C decoder's own recursion guard stops it (at the
    interpreter's recursion limit) before it costs more than a few microseconds per level.

    U+0000 is dropped from every string (PostgreSQL can store none, see `pipeline.storable`).
    UTF-8 JSON can only spell it `\\u0000` (UTF-16 and UTF-32 bodies hold NUL bytes), so a body
    with neither is returned as parsed, without a walk."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise BadPayload("nesting_too_deep", "The JSON body is nested too deeply.") from None
    except (UnicodeDecodeError, ValueError):
        raise BadPayload("malformed_json", "The body is not valid JSON.") from None
    return strip_nul(payload) if b"\\u0000" in body or b"\x00" in body else payload


def parse_form(body: bytes) -> dict[str, Any]:
    """`application/x-www-form-urlencoded`, with PHP-style keys (`data[merges][EMAIL]`) nested."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise BadPayload("malformed_form", "The body is not valid form data.") from None
    result: dict[str, Any] = {}
    for raw_key, raw_value in pairs:
        # `%00` decodes to U+0000, which PostgreSQL can store nowhere: dropped, as for JSON
        key, value = raw_key.replace(NUL, ""), raw_value.replace(NUL, "")
        parts = key.replace("]", "").split("[")
        if len(parts) > MAX_JSON_DEPTH:
            raise BadPayload("nesting_too_deep", "The form keys are nested too deeply.")
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise BadPayload(
                    "malformed_form", f"The form key {part!r} is both a value and a group."
                )
            node = child
        node[parts[-1]] = value
    return result


class SourceProvider:
    """Defaults for a webhook source; a provider module subclasses it and overrides what differs."""

    name: ClassVar[str]
    signature: ClassVar[SignatureScheme]
    body_format: ClassVar[str] = "json"
    # Mailchimp validates a new webhook URL with a GET and expects a 200
    answers_get: ClassVar[bool] = False
    # kept from every delivery whatever the provider: what the body is and who sent it; a
    # provider adds its own (`(*signature headers, *SourceProvider.stored_headers)`)
    stored_headers: ClassVar[tuple[str, ...]] = ("Content-Type", "User-Agent")
    needs_secrets: ClassVar[bool] = True
    # events whose authenticity is only proven after the edge (PayPal's postback) are stored at
    # most this fast per source unless the source sets `unverified_rate_limit` (events/s, burst)
    default_unverified_rate: ClassVar[tuple[float, int] | None] = None
    needs_api_base: ClassVar[bool] = False
    default_api_base: ClassVar[str | None] = None
    default_on_unknown_fields: ClassVar[str] = "reject"
    options_schema: ClassVar[type[Schema] | None] = None
    # provider event type -> lane; a type not listed is stored and marked ignored at once
    lanes: ClassVar[Mapping[str, str]] = {}
    # instead of `lanes`: the one lane of every type that has a contract
    lane: ClassVar[str | None] = None
    # provider event type -> contract (marshmallow schema, versioned by name)
    contracts: ClassVar[Mapping[str, type[Schema]]] = {}
    # provider event type -> {version: contract}, for providers whose contracts changed
    contract_versions: ClassVar[Mapping[str, Mapping[int, type[Schema]]]] = {}

    def parse(self, body: bytes) -> Any:
        return parse_form(body) if self.body_format == "form" else parse_json(body)

    def identify(self, payload: Any, body: bytes, headers: Mapping[str, str]) -> Identified:
        raise NotImplementedError

    def identify_for(
        self, source: SourceConfig, payload: Any, body: bytes, headers: Mapping[str, str]
    ) -> Identified:
        """What the receiver calls: `identify`, unless the source's options say where the id
        and type live (the generic HMAC source's `id_field` / `type_field`)."""
        return self.identify(payload, body, headers)

    def lane_for(self, provider_type: str) -> str | None:
        if self.lane is not None:
            return self.lane if provider_type in self.contracts else None
        return self.lanes.get(provider_type)

    def versioned_contract(
        self, provider_type: str, payload: Any, pinned: int | None
    ) -> type[Schema] | None:
        """The contract to check against: the newest version, or the newest at or below the
        source's pinned `contract_version` (a creator bumps it once a provider's change is
        reviewed, then replays what was quarantined)."""
        versions = self.contract_versions.get(provider_type)
        if not versions:
            return self.contract_for(provider_type, payload)
        allowed = [v for v in versions if pinned is None or v <= pinned] or [min(versions)]
        return versions[max(allowed)]

    def contract_for(self, provider_type: str, payload: Any) -> type[Schema] | None:
        return self.contracts.get(provider_type)

    def verify(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Verdict | None:
        """Checks needing more than the HMAC (a postback, payment finality). None: go on."""
        return None

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched | None:
        """Fetches the full object from the provider's API; None when the payload is complete."""
        return None

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        raise NotImplementedError


class DestinationProvider:
    """Defaults for a destination; `perform` does one action, `perform_batch` many at once."""

    name: ClassVar[str]
    kind: ClassVar[str]
    # verb -> the lane it runs on unless the destination sets `lane`
    actions: ClassVar[Mapping[str, str]] = {}
    # revoking verb -> the verb it undoes (unenroll -> enroll): a revoke waits for the same
    # purchase's grant to finish, and a grant not yet sent is cancelled once a revoke is planned
    revokes: ClassVar[Mapping[str, str]] = {}
    # create-only APIs (no idempotency key): a retry looks before it creates, so after a call of
    # unknown outcome the next try waits until that call must have finished at the destination
    looks_before_create: ClassVar[bool] = False
    # provider calls one action makes at most: what a replay plan's estimate counts
    calls_per_action: ClassVar[int] = 1
    batch_size: ClassVar[int] = 1
    needs_api_base: ClassVar[bool] = True
    default_api_base: ClassVar[str | None] = None
    options_schema: ClassVar[type[Schema] | None] = None

    def perform(
        self, ctx: DestinationContext, delivery: DeliveryRef, event: dict[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def perform_batch(self, ctx: DestinationContext, items: Batch) -> dict[int, Outcome]:
        """Per-item results; an Exception value fails only that item. Raise to fail them all."""
        raise NotImplementedError
