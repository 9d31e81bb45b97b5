"""Calendly as a source: signed invitee webhooks in, the invitee and its event re-read, bookings out.

Facts (developer.calendly.com: webhooks overview, webhook-signatures, "see how webhook payloads
change when invitees reschedule events", get-event-invitee, get-event; invitee/event shapes also in
koshilife/calendly-api-ruby-client `test/testdata/scheduled_event_invitee_301.json`):
- `Calendly-Webhook-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 of "<t>." + raw body with the
  subscription's signing key (receivers/schemes/calendly.py). Calendly's sample code refuses
  timestamps older than 3 minutes; the exact window is not documented [U], so it is the source's
  `tolerance_seconds` (180 in our test config).
- A reschedule fires `invitee.canceled` for the old invitee (`rescheduled: true`, `new_invitee`
  set) AND `invitee.created` for the new one (`old_invitee` set). The first is not a cancellation:
  it is ignored with a Verdict; the second becomes `booking.rescheduled`.
- Webhooks are pointers: `GET /scheduled_events/{event_uuid}/invitees/{invitee_uuid}` and
  `GET /scheduled_events/{event_uuid}`, Bearer token (option `api_token`), each answering
  `{"resource": {...}}` (envelope [V: get-event-invitee reference]). The URLs are built from the
  configured `api_base` and uuids validated out of the payload's URIs, and only URIs on the
  api_base's own origin are read at all: nothing in a payload chooses where we connect.
- Event identity: Calendly sends no delivery id. The external id is derived from what names one
  delivery: `<event>:` + SHA-256 of event + invitee URI + the webhook's `created_at`. A retry of
  the same delivery carries the same three and is acknowledged as a duplicate; the reschedule pair
  names two different invitees, so it is two events.
  Types we do not map (no-shows, routing forms, event types) have no lane: stored, ignored.
- Mapping: invitee.created -> booking.created, or booking.rescheduled when the re-read invitee has
  `old_invitee`, unless the re-read invitee's `status` is already `canceled` (get-event-invitee:
  `active` or `canceled`): then it is ignored (`canceled_before_processing`), the cancellation's
  own webhook being the booking's last word; invitee.canceled -> booking.canceled unless
  `rescheduled`. The booking is the invitee (`calendly:<invitee uuid>`); times come from its
  scheduled event, the zone from the invitee's `timezone`; the contact links `calendly_invitee`
  to the invitee uuid (stable whatever the api_base, unlike the URI).
- Ordering guard: the invitee's `updated_at` (ms) under `calendly:invitee:<uuid>`.
- Retries of Calendly's own deliveries, and whether a retry is re-signed with a new `t`, are not
  documented beyond "exponential" [U]: identity never depends on the signature header.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from marshmallow import fields

from pipeline.delivery.http import ApiClient, same_origin
from pipeline.errors import BadPayload, ContractError
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, Identified, SourceContext, Verdict
from pipeline.providers.shared import shape
from pipeline.providers.shared.bookings import BookingSource, booking_instant, booking_times
from pipeline.providers.shared.identity import required_text
from pipeline.providers.shared.instants import version_ms
from pipeline.providers.shared.options import StrictOptions
from pipeline.signatures.timestamped_hmac import TimestampedHmac
from schemas.contracts.calendly import CONTRACTS

DEFAULT_API_BASE = "https://api.calendly.com"
_UUID = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"


class CalendlyOptions(StrictOptions):
    api_token = fields.Str(required=True)


def api(ctx: SourceContext) -> ApiClient:
    return ApiClient(
        provider="calendly",
        base_url=ctx.source.api_base or DEFAULT_API_BASE,
        session=ctx.http,
        headers={"Authorization": f"Bearer {ctx.source.options['api_token']}"},
    )


def _path_of(uri: Any, api_base: str, what: str) -> str:
    """The URI's path below the api_base, once it is proved to be on the api_base's origin."""
    if not isinstance(uri, str) or not same_origin(uri, api_base):
        raise ContractError(
            f"the {what} URI is not on the configured Calendly API origin", reason="foreign_uri"
        )
    parts = urlsplit(uri)
    prefix = urlsplit(api_base).path.rstrip("/")
    if parts.query or parts.fragment or not parts.path.startswith(prefix + "/"):
        raise ContractError(f"the {what} URI is not a Calendly API path", reason="bad_uri")
    return parts.path[len(prefix) :]


def invitee_ids(uri: Any, api_base: str) -> tuple[str, str]:
    """(event uuid, invitee uuid) from an invitee URI, validated."""
    path = _path_of(uri, api_base, "invitee")
    found = re.fullmatch(rf"/scheduled_events/({_UUID})/invitees/({_UUID})", path)
    if found is None:
        raise ContractError("the invitee URI is malformed", reason="bad_invitee_uri")
    return found.group(1), found.group(2)


def event_id(uri: Any, api_base: str) -> str:
    found = re.fullmatch(rf"/scheduled_events/({_UUID})", _path_of(uri, api_base, "event"))
    if found is None:
        raise ContractError("the scheduled event URI is malformed", reason="bad_event_uri")
    return found.group(1)


def external_id(kind: str, invitee_uri: str, created_at: str) -> str:
    digest = hashlib.sha256(f"{kind}|{invitee_uri}|{created_at}".encode()).hexdigest()
    return f"{kind}:{digest[:40]}"


def _millis(value: Any, field: str) -> int:
    return version_ms(booking_instant(value, field))


class CalendlySource(BookingSource):
    name = "calendly"
    # HMAC-SHA256 of "<t>.<raw body>" with the subscription's signing key
    # (developer.calendly.com/api-docs/overview/webhooks/webhook-signatures); Calendly's own sample
    # refuses anything older than 3 minutes, which is what our test configuration uses
    signature = TimestampedHmac(header="Calendly-Webhook-Signature")
    stored_headers = ("Calendly-Webhook-Signature", *BookingSource.stored_headers)
    default_api_base = DEFAULT_API_BASE
    options_schema = CalendlyOptions
    contracts = CONTRACTS

    def identify(self, payload: Any, body: bytes, headers: Any) -> Identified:
        message = "A Calendly webhook needs a string 'event'."
        kind = required_text(payload, "event", "missing_event_type", message)[:100]
        inner, created_at = payload.get("payload"), payload.get("created_at")
        uri = inner.get("uri") if isinstance(inner, dict) else None
        if isinstance(uri, str) and isinstance(created_at, str):
            return Identified(external_id(kind, uri, created_at), provider_type=kind)
        if self.lane_for(kind) is not None:
            raise BadPayload(
                "missing_event_id",
                "A Calendly invitee webhook needs 'payload.uri' and 'created_at'.",
            )
        # a type we do not map (no-shows, event types…) is stored and ignored: any stable id does
        return Identified(f"{kind}:{hashlib.sha256(body).hexdigest()[:40]}", provider_type=kind)

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched:
        api_base = ctx.source.api_base or DEFAULT_API_BASE
        event_uuid, invitee_uuid = invitee_ids(payload["payload"]["uri"], api_base)
        if event_id(payload["payload"]["event"], api_base) != event_uuid:
            raise ContractError(
                "the invitee URI and the event URI disagree", reason="event_mismatch"
            )
        client = api(ctx)
        invitee = client.request(
            "GET", f"/scheduled_events/{event_uuid}/invitees/{invitee_uuid}"
        ).json()
        scheduled = client.request("GET", f"/scheduled_events/{event_uuid}").json()
        found = {"invitee": _resource(invitee), "event": _resource(scheduled)}
        version = _millis(found["invitee"].get("updated_at"), "updated_at")
        return Fetched(found, f"calendly:invitee:{invitee_uuid}", version)

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        assert fetched is not None
        invitee, scheduled = fetched.object["invitee"], fetched.object["event"]
        api_base = ctx.source.api_base or DEFAULT_API_BASE
        _, invitee_uuid = invitee_ids(invitee.get("uri"), api_base)
        if event.provider_type == "invitee.canceled":
            if invitee.get("rescheduled") or payload["payload"].get("rescheduled"):
                # the old half of a reschedule: the new invitee's invitee.created carries it
                return Verdict("ignore", "canceled_by_reschedule")
            canonical_type = "booking.canceled"
        elif invitee.get("status") == "canceled":
            # canceled before we got to it: the invitee.canceled says so; nothing was booked
            return Verdict("ignore", "canceled_before_processing")
        elif invitee.get("old_invitee"):
            canonical_type = "booking.rescheduled"
        else:
            canonical_type = "booking.created"
        return shape.event(
            canonical_type,
            key=f"calendly:{invitee_uuid}",
            source=event.source,
            provider=self.name,
            occurred_at=booking_instant(payload["created_at"], "created_at"),
            contact=_contact(invitee, invitee_uuid),
            booking=_booking(invitee, invitee_uuid, scheduled, api_base),
        )


def _resource(answer: Any) -> dict[str, Any]:
    resource = answer.get("resource") if isinstance(answer, dict) else None
    if not isinstance(resource, dict):
        raise ContractError("Calendly answered without a 'resource'", reason="no_resource")
    return resource


def _contact(invitee: dict[str, Any], invitee_uuid: str) -> dict[str, Any]:
    return shape.contact(
        invitee.get("email"),
        name=invitee.get("name"),
        first_name=invitee.get("first_name"),
        last_name=invitee.get("last_name"),
        external_ids={"calendly_invitee": invitee_uuid},
    )


def _booking(
    invitee: dict[str, Any], invitee_uuid: str, scheduled: dict[str, Any], api_base: str
) -> dict[str, Any]:
    start: datetime = booking_instant(scheduled.get("start_time"), "start_time")
    end = booking_instant(scheduled["end_time"], "end_time") if scheduled.get("end_time") else None
    old = invitee.get("old_invitee")
    return {
        "id": invitee_uuid,
        **booking_times(start, end, invitee.get("timezone")),
        "event_name": scheduled.get("name"),
        "status": invitee.get("status"),
        "rescheduled_from": invitee_ids(old, api_base)[1] if old else None,
    }


SOURCE = CalendlySource()
