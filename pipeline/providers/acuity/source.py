"""Acuity Scheduling as a source: signed form webhooks in, the appointment re-read, bookings out.

Facts (developers.acuityscheduling.com: docs/webhooks, page/webhooks-webhooks-webhooks (dynamic),
v1.0/reference quick start, reference/api-errors; the appointment object is the documented example
plus the fields recorded API answers show, e.g. brianpowell/go-acuity `models.go` and public clients
quoting real responses with `canceled`, `calendarTimezone`, `datetimeCreated` [V2]):
- POST `application/x-www-form-urlencoded`: `action` (scheduled | rescheduled | canceled | changed;
  `order.completed` for orders), `id`, `calendarID`, `appointmentTypeID`. Dynamic webhooks are
  subscribed as `appointment.scheduled` etc.; whether their `action` carries that prefix is not
  documented [U], so both spellings are accepted and stored without it.
- `X-Acuity-Signature`: base64 HMAC-SHA256 of the raw body keyed with the API key
  (receivers/schemes/acuity.py): the API key is the source's signing secret.
- The body is a pointer: `GET /appointments/{id}` under `api_base` (default
  `https://acuityscheduling.com/api/v1`), HTTP Basic with the numeric user id and the API key
  (options `user_id`, `api_key`); 401 `{"status_code","message","error"}` on bad credentials; the
  rate limit is 10 req/s per IP (api-errors page). Retry policy for failed webhooks: not found [U].
- `changed` is a catch-all Acuity also fires for every schedule, reschedule and cancel: subscribed
  together with the specific actions it duplicates them, and alone it says nothing about what
  changed. It is ignored with a Verdict (`changed_duplicates_specific_actions`), before any fetch.
- `order.completed` is an order, not a booking: no lane, stored and ignored by the receiver.
- Mapping: scheduled -> booking.created, rescheduled -> booking.rescheduled, canceled ->
  booking.canceled; the re-read appointment decides when it disagrees: `canceled: true` is
  booking.canceled whatever the action (same key, so planned once), and a `canceled` webhook for an
  appointment that says `canceled: false` is ignored (`appointment_not_canceled`).
- Event identity: the form has no delivery id and no timestamp. `scheduled` and `canceled` happen
  once per appointment, so their external id (and the ignored `changed`'s) is
  `<action>:<id>:<sha256(body)[:16]>` and an identical re-post is a retry, acknowledged as a
  duplicate. `rescheduled` legitimately repeats
  with a byte-identical body (a second move on the same calendar), so each delivery gets a random
  suffix and is stored; a retry then re-plans nothing, because the booking's canonical key names
  the new start time (`acuity:<id>:<starts_at>`). Known gap: moving A -> B -> A -> B reuses B's key.
- No version field exists on an appointment: the ordering guard uses the webhook's receipt time,
  so a late-processed older webhook (say `scheduled` after `canceled`) is superseded, not replayed.
- Times: `datetime` ("2013-07-02T10:15:00-0700") fixes the instant; the attendee's zone is the
  appointment's `timezone`; `local_start` is computed with zoneinfo (pipeline/providers/shared/bookings.py).
  The end is `datetime` + `duration` minutes (`endTime` is a bare wall-clock "11:15am").
- Contact: e-mail and names. Acuity appointments carry no client id (clients are keyed by name and
  phone in `/clients`), so the only provider id linked is `acuity_appointment`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from marshmallow import fields, validate

from pipeline.delivery.http import ApiClient
from pipeline.errors import BadPayload, ContractError
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, Identified, SourceContext, Verdict
from pipeline.providers.shared import shape
from pipeline.providers.shared.bookings import (
    BookingSource,
    booking_instant,
    booking_times,
    plus_minutes,
)
from pipeline.providers.shared.instants import version_ms
from pipeline.providers.shared.options import StrictOptions
from pipeline.signatures.body_hmac import BodyHmac
from schemas.contracts.acuity import CONTRACTS

DEFAULT_API_BASE = "https://acuityscheduling.com/api/v1"
_ID = re.compile(r"^[0-9]{1,20}$")
# actions a provider can legitimately send twice with the same body: never deduplicated by body
REPEATABLE = frozenset({"rescheduled"})
CANONICAL_TYPES = {
    "scheduled": "booking.created",
    "rescheduled": "booking.rescheduled",
    "canceled": "booking.canceled",
}


class AcuityOptions(StrictOptions):
    user_id = fields.Str(required=True, validate=validate.Regexp(r"^[0-9]{1,20}$"))
    api_key = fields.Str(required=True, validate=validate.Length(min=1))


def api(ctx: SourceContext) -> ApiClient:
    options = ctx.source.options
    return ApiClient(
        provider="acuity",
        base_url=ctx.source.api_base or DEFAULT_API_BASE,
        session=ctx.http,
        auth=(options["user_id"], options["api_key"]),
    )


def action_of(value: Any) -> str:
    """`scheduled` from `scheduled` or `appointment.scheduled` (dynamic webhooks, [U])."""
    text = str(value)[:60]
    return text.removeprefix("appointment.")


def external_id(action: str, appointment_id: str, body: bytes) -> str:
    found = f"{action}:{appointment_id}:{hashlib.sha256(body).hexdigest()[:16]}"
    return f"{found}:{secrets.token_hex(8)}" if action in REPEATABLE else found


def appointment_id(value: Any) -> str:
    if not isinstance(value, str | int) or not _ID.match(str(value)):
        raise ContractError("the appointment id is missing or not a number", reason="bad_id")
    return str(value)


class AcuitySource(BookingSource):
    name = "acuity"
    # base64 HMAC-SHA256 of the raw form body keyed with the account's API key
    # (developers.acuityscheduling.com/docs/webhooks, "Verifying Webhook Requests"): the API key is
    # the source's signing secret; no timestamp, so a replay is caught by the event-id rules
    signature = BodyHmac(header="X-Acuity-Signature", encoding="base64")
    body_format = "form"
    stored_headers = ("X-Acuity-Signature", *BookingSource.stored_headers)
    default_api_base = DEFAULT_API_BASE
    options_schema = AcuityOptions
    contracts = CONTRACTS

    def identify(self, payload: Any, body: bytes, headers: Any) -> Identified:
        action, found = payload.get("action"), payload.get("id")
        if not isinstance(action, str) or not action:
            raise BadPayload("missing_event_type", "An Acuity webhook needs an 'action'.")
        if not isinstance(found, str) or not found or len(found) > 40:
            raise BadPayload("missing_event_id", "An Acuity webhook needs an 'id'.")
        kind = action_of(action)
        return Identified(external_id(kind, found, body), provider_type=kind)

    def verify(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Verdict | None:
        if event.provider_type == "changed":
            # a catch-all fired alongside scheduled/rescheduled/canceled: acting on it would
            # double them, and it does not say what changed
            return Verdict("ignore", "changed_duplicates_specific_actions")
        return None

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched:
        found = appointment_id(payload["id"])
        appointment = api(ctx).request("GET", f"/appointments/{found}").json()
        if not isinstance(appointment, dict) or str(appointment.get("id")) != found:
            raise ContractError("Acuity answered with another appointment", reason="id_mismatch")
        version = version_ms(event.received_at)
        return Fetched(appointment, f"acuity:appointment:{found}", version)

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        assert fetched is not None
        appointment = fetched.object
        found = appointment_id(appointment.get("id"))
        canceled = appointment.get("canceled")
        if event.provider_type == "canceled" and canceled is False:
            return Verdict("ignore", "appointment_not_canceled")
        canonical_type = (
            "booking.canceled" if canceled is True else CANONICAL_TYPES.get(event.provider_type)
        )
        if canonical_type is None:
            return Verdict("ignore", "not_a_booking_action")
        booking = _booking(appointment, found, canceled is True)
        key = f"acuity:{found}"
        if canonical_type == "booking.rescheduled":
            key = f"{key}:{booking['starts_at']}"
        return shape.event(
            canonical_type,
            key=key,
            source=event.source,
            provider=self.name,
            occurred_at=event.received_at,
            contact=shape.contact(
                appointment.get("email") or None,
                first_name=appointment.get("firstName") or None,
                last_name=appointment.get("lastName") or None,
                external_ids={"acuity_appointment": found},
            ),
            booking=booking,
        )


def _booking(appointment: dict[str, Any], found: str, canceled: bool) -> dict[str, Any]:
    start = booking_instant(appointment.get("datetime"), "datetime")
    end = plus_minutes(start, appointment.get("duration"))
    return {
        "id": found,
        **booking_times(start, end, appointment.get("timezone")),
        "event_name": appointment.get("type") or None,
        "status": "canceled" if canceled else "scheduled",
    }


SOURCE = AcuitySource()
