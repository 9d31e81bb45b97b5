"""Calendly webhook contracts, version 1 (API v2 webhooks: `invitee.created`, `invitee.canceled`).

Field lists follow Calendly's published Webhook Payload object (developer.calendly.com, "Webhook
Payload"; the invitee fields also in speakeasy-sdks/calendly-python `models/shared/invitee.py`).
What the mapping reads is required: the invitee's uri, event, e-mail, name, zone, status, the
reschedule links and `updated_at` (the ordering guard's version). The fetched invitee has the same
shape, so a drift seen here is the drift the mapping would meet. The embedded `scheduled_event` is
known but not relied on: the event is re-read from the API.

Calendly adds fields to these objects from time to time (release notes: `cancellation` 2021-01,
`cancel_url`/`reschedule_url` 2020-12, later `payment`, `no_show`, `reconfirmation`,
`scheduling_method`), so Calendly sources default to `on_unknown_fields = "warn"`: a new field is
recorded as drift and the booking goes on, while a missing or retyped field we read still
quarantines the event.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.contracts.base import contract, nested

INVITEE_FIELDS = (
    "cancel_url",
    "reschedule_url",
    "created_at",
    "first_name",
    "last_name",
    "questions_and_answers",
    "tracking",
    "text_reminder_number",
    "new_invitee",
    "cancellation",
    "routing_form_submission",
    "payment",
    "no_show",
    "reconfirmation",
    "scheduling_method",
    "invitee_scheduled_by",
    "scheduled_event",
)
WEBHOOK_FIELDS = ("created_by",)
_URI = validate.Length(min=8, max=500)


def _uri(*, allow_none: bool = False) -> fields.Str:
    return fields.Str(required=True, allow_none=allow_none, validate=_URI)


InviteePayloadV1 = contract(
    "CalendlyInviteePayloadV1",
    required={
        "uri": _uri(),
        "event": _uri(),
        "email": fields.Str(required=True, validate=validate.Length(min=3, max=320)),
        "name": fields.Str(required=True, allow_none=True),
        "timezone": fields.Str(required=True, validate=validate.Length(min=1, max=64)),
        "status": fields.Str(required=True, validate=validate.OneOf(["active", "canceled"])),
        "rescheduled": fields.Bool(required=True),
        "old_invitee": _uri(allow_none=True),
        "updated_at": fields.Str(required=True),
    },
    optional=INVITEE_FIELDS,
)


def _webhook(name: str, payload: type[Schema]) -> type[Schema]:
    return contract(
        name,
        required={
            "event": fields.Str(required=True),
            "created_at": fields.Str(required=True),
            "payload": nested(payload, required=True),
        },
        optional=WEBHOOK_FIELDS,
    )


InviteeEventV1 = _webhook("CalendlyInviteeEventV1", InviteePayloadV1)

CONTRACTS: dict[str, type[Schema]] = {
    "invitee.created": InviteeEventV1,
    "invitee.canceled": InviteeEventV1,
}
