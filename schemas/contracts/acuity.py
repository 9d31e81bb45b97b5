"""Acuity Scheduling webhook contracts, version 1: the form body of an appointment webhook.

The body is only a pointer (developers.acuityscheduling.com/docs/webhooks): `action`, `id` (the
appointment), `calendarID`, `appointmentTypeID`. The mapping reads `action` and `id`, so they are
required (`id` all digits: it is put into a URL); the calendar and type ids are merely known.

Acuity adds fields to its payloads now and then. Since the appointment itself is always re-read
from the API, an extra form field changes nothing we do, so Acuity sources default to
`on_unknown_fields = "warn"`: recorded as drift, the booking goes on; a missing `action` or `id`
still quarantines the event.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.contracts.base import contract

ACTIONS = ("scheduled", "rescheduled", "canceled", "changed")

AppointmentWebhookV1 = contract(
    "AcuityAppointmentWebhookV1",
    required={
        "action": fields.Str(required=True, validate=validate.Length(min=1, max=60)),
        "id": fields.Str(required=True, validate=validate.Regexp(r"^[0-9]{1,20}$")),
    },
    optional=("calendarID", "appointmentTypeID"),
)

CONTRACTS: dict[str, type[Schema]] = dict.fromkeys(ACTIONS, AppointmentWebhookV1)
