"""Kit webhooks in: the signed webhook endpoints (`kit`) and the legacy webhooks (`kit_legacy`).

Webhook endpoints (developers.kit.com/webhooks/overview, /delivery-format, /event-types,
/verifying-signatures, /retries): a delivery is `{"delivery_id", "events": [...]}` with 1 to 100
events of one type, each with a UUID `id`; signed `X-Kit-Signature: t=…,v1=…`; retried for ~41 h
under the same `delivery_id`, re-signed each time; an upstream re-emit may carry an event again
under a new delivery. The stored id is `<delivery_id>:<digest of the body>`, so a retry is a
duplicate, and the canonical key is the event's UUID, so a re-emit performs nothing twice.

One delivery is stored as one event. A delivery with more than one event (Kit batches bulk
actions in the app) is dead-lettered whole with reason `batched_delivery`, raw body kept, never
silently half-processed: one stored event yields one canonical event, and splitting a delivery
into one stored event per Kit event needs a receiver hook (reported as a needed core change).

Mapping: subscriber.activated -> subscriber.added (subscriber.created too, only when the source
sets `added_on_created = true` and the subscriber is active: a created subscriber may still be
unconfirmed, and activation follows); subscriber.unsubscribed/bounced/complained ->
subscriber.unsubscribed (status = Kit's state); subscriber.tag_added -> subscriber.tagged.

Legacy webhooks (ConvertKit/developers-documentation `_webhooks.md`): `{"subscriber": {...}}`,
no event name, no id, no time, no signature: one URL per event, so the source names its `event`
(and `tag` for tag_add, whose payload does not say which tag). The id is a digest of the body;
the time is when we received it. A re-activation whose body is byte-identical to an earlier one
is indistinguishable from a re-post and counts as a duplicate: prefer webhook endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from pipeline.errors import BadPayload, ContractError
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, Identified, SourceContext, SourceProvider, Verdict
from pipeline.providers.shared.identity import body_id
from pipeline.providers.shared.instants import Refusals, parse_instant, version_ms
from pipeline.providers.shared.options import StrictOptions
from pipeline.providers.shared.subscribers import Member, subscriber_event
from pipeline.signatures.timestamped_hmac import TimestampedHmac
from pipeline.signatures.url_secret import UrlSecret
from schemas.contracts.kit import CONTRACTS, LegacySubscriberV1

# Kit's type -> the canonical type; the subscription-state ones share one ordering key
STATE_EVENTS = {
    "subscriber.created": "subscriber.added",
    "subscriber.activated": "subscriber.added",
    "subscriber.unsubscribed": "subscriber.unsubscribed",
    "subscriber.bounced": "subscriber.unsubscribed",
    "subscriber.complained": "subscriber.unsubscribed",
}
LEGACY_EVENTS = {
    "subscriber_activate": "subscriber.added",
    "subscriber_unsubscribe": "subscriber.unsubscribed",
    "subscriber_bounce": "subscriber.unsubscribed",
    "subscriber_complain": "subscriber.unsubscribed",
    "tag_add": "subscriber.tagged",
}
LEGACY_TYPE = "subscriber"
CREATED_REFUSALS = Refusals.of_field("payload", "created", malformed="is not a date and time")


def created_at(kit_event: Mapping[str, Any]) -> datetime:
    """When a Kit event happened; Kit stamps its events in UTC (`…Z`), so a time sent without
    an offset is read as UTC rather than refused."""
    return parse_instant(kit_event.get("created"), CREATED_REFUSALS, naive_zone="UTC", trim=True)


def kit_event_of(
    canonical_type: str,
    key: str,
    event: StoredEvent,
    when: datetime,
    sub: Mapping[str, Any],
    *,
    tags: list[str],
) -> dict[str, Any]:
    """A Kit subscriber's change; Kit has no lists, so the subscriber part names none."""
    member = Member(
        str(sub["id"]),
        sub["email_address"],
        first_name=sub.get("first_name"),
        status=sub["state"],
        tags=tags,
        listed=False,
    )
    return subscriber_event(
        canonical_type,
        key=key,
        event=event,
        provider=event.provider,
        occurred_at=when,
        member=member,
        id_kind="kit_subscriber",
    )


class KitSourceOptions(StrictOptions):
    added_on_created = fields.Bool(load_default=False)


class KitSource(SourceProvider):
    name = "kit"
    # developers.kit.com/webhooks/verifying-signatures: `v1` is the hex HMAC-SHA256 of
    # "<t>.<raw body>" keyed with the endpoint's secret; during a rotation the header carries one
    # `v1` per valid secret; Kit re-signs every retry at send time and suggests 5 minutes' tolerance
    signature = TimestampedHmac(header="X-Kit-Signature")
    stored_headers = ("X-Kit-Signature", *SourceProvider.stored_headers)
    default_on_unknown_fields = "warn"  # Kit adds event types and fields as it rolls them out
    options_schema = KitSourceOptions
    lane = "enrollments"
    contracts = CONTRACTS

    def identify(self, payload: Any, body: bytes, headers: Mapping[str, str]) -> Identified:
        delivery = payload.get("delivery_id") if isinstance(payload, dict) else None
        if not isinstance(delivery, int) or isinstance(delivery, bool):
            raise BadPayload(
                "missing_delivery_id", "A Kit delivery needs an integer 'delivery_id'."
            )
        events = payload.get("events")
        if not isinstance(events, list) or not events or not isinstance(events[0], dict):
            raise BadPayload("missing_events", "A Kit delivery needs a non-empty 'events' array.")
        kind = events[0].get("type")
        if not isinstance(kind, str) or not kind:
            raise BadPayload("missing_event_type", "Each Kit event needs a string 'type'.")
        return Identified(external_id=body_id(f"{delivery}:", body), provider_type=kind)

    def verify(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Verdict | None:
        count = len(payload["events"])
        if count > 1:
            raise ContractError(
                f"this Kit delivery batches {count} events; one stored event maps to one "
                "canonical event, so it is kept here whole for an operator",
                reason="batched_delivery",
            )
        return None

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched | None:
        """No API call (the event carries the subscriber); subscription changes are versioned by
        the event's time, so a late retry never overrides a newer state. Tags are not states."""
        if event.provider_type not in STATE_EVENTS:
            return None
        kit_event = payload["events"][0]
        sub_id = kit_event["data"]["subscriber"]["id"]
        when = created_at(kit_event)
        return Fetched(kit_event, f"kit:subscriber:{sub_id}", version_ms(when))

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        kit_event = payload["events"][0]
        data, kind = kit_event["data"], event.provider_type
        sub = data["subscriber"]
        when = created_at(kit_event)
        if kind == "subscriber.created" and not ctx.source.options["added_on_created"]:
            return Verdict("ignore", "activation_follows_creation")
        if kind in ("subscriber.created", "subscriber.activated") and sub["state"] != "active":
            return Verdict("ignore", "subscriber_not_active")
        key = f"kit:{kit_event['id']}"
        if kind == "subscriber.tag_added":
            tags = [data["tag"]["name"]]
            return kit_event_of("subscriber.tagged", key, event, when, sub, tags=tags)
        return kit_event_of(STATE_EVENTS[kind], key, event, when, sub, tags=[])


class KitLegacyOptions(StrictOptions):
    event = fields.Str(required=True, validate=validate.OneOf(sorted(LEGACY_EVENTS)))
    tag = fields.Str(load_default=None, validate=validate.Length(min=1, max=255))

    @validates_schema
    def _tag_for_tag_add(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data["event"] == "tag_add") != bool(data.get("tag")):
            raise ValidationError("Name the tag (and only) for event = 'tag_add'.", "tag")


class KitLegacySource(SourceProvider):
    name = "kit_legacy"
    signature = UrlSecret()
    default_on_unknown_fields = "warn"
    options_schema = KitLegacyOptions
    lane = "enrollments"
    contracts = {LEGACY_TYPE: LegacySubscriberV1}

    def identify(self, payload: Any, body: bytes, headers: Mapping[str, str]) -> Identified:
        if not isinstance(payload, dict) or not isinstance(payload.get("subscriber"), dict):
            raise BadPayload("missing_subscriber", "A Kit webhook needs a 'subscriber' object.")
        return Identified(external_id=body_id("kitl_", body), provider_type=LEGACY_TYPE)

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        kind, sub = ctx.source.options["event"], payload["subscriber"]
        canonical_type = LEGACY_EVENTS[kind]
        if canonical_type == "subscriber.added" and sub["state"] != "active":
            return Verdict("ignore", "subscriber_not_active")
        tags = [ctx.source.options["tag"]] if kind == "tag_add" else []
        key = f"kit:legacy:{sub['id']}:{kind}:{event.external_id}"
        return kit_event_of(canonical_type, key, event, event.received_at, sub, tags=tags)


SOURCE = KitSource()
LEGACY_SOURCE = KitLegacySource()
