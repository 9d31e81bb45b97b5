"""The canonical envelope, version 1: what a generic source (Standard Webhooks, generic HMAC) sends.

```json
{"id": "ord_1001", "type": "purchase.completed", "occurred_at": "2026-03-01T12:00:00Z",
 "data": {"contact": {"email": "ada@example.com", "first_name": "Ada"},
          "purchase": {"id": "ord_1001", "amount": 4900, "currency": "eur",
                       "items": [{"product": "course-pro", "quantity": 1}]}},
 "meta": {"anything": "the sender wants to keep"}}
```

- `type` is a canonical type (`schemas.canonical`): `purchase.completed`, `booking.created`,
  `analytics.page_view`… Another type is stored and ignored.
- `occurred_at` is an ISO 8601 instant with its offset; `data` holds the canonical parts, each
  exactly as `schemas.canonical` defines it, and the part the type's family needs is required
  (`purchase` for `purchase.*`, `analytics` for `analytics.*`…): without it the event is quarantined.
- `data.key` (optional) names the business subject when two events may describe the same one
  (a resend under a new id); otherwise the subject is the event's id.
- `id`, `type` and `meta` are read where the source's options say (`id_field`, `type_field`), so
  they are merely known here; `meta` is free-form.
"""

from __future__ import annotations

from functools import cache

from marshmallow import Schema, fields, validate

from schemas.canonical import (
    AnalyticsSchema,
    BookingSchema,
    ContactSchema,
    EnrollmentSchema,
    PurchaseSchema,
    SubscriberSchema,
    SubscriptionSchema,
)
from schemas.contracts.base import contract, nested

PARTS: dict[str, type[Schema]] = {
    "contact": ContactSchema,
    "purchase": PurchaseSchema,
    "subscription": SubscriptionSchema,
    "enrollment": EnrollmentSchema,
    "subscriber": SubscriberSchema,
    "booking": BookingSchema,
    "analytics": AnalyticsSchema,
}
SUBJECT_KEY_MAX = 200


@cache
def envelope_contract(family: str) -> type[Schema]:
    """The envelope contract for one canonical family (`purchase`, `analytics`…)."""
    if family not in PARTS:
        raise KeyError(f"no canonical part named {family!r}")
    # every part is modelled (unknown fields inside any of them are drift); only the family's
    # own part is required, each field carrying its own `required` flag
    data_fields: dict[str, fields.Field] = {
        name: nested(schema, required=True) if name == family else nested(schema, allow_none=True)
        for name, schema in PARTS.items()
    }
    data_fields["key"] = fields.Str(validate=validate.Length(min=1, max=SUBJECT_KEY_MAX))
    title = family.capitalize()
    data = contract(f"Generic{title}DataV1", required=data_fields)
    return contract(
        f"Generic{title}EnvelopeV1",
        required={
            "occurred_at": fields.AwareDateTime(required=True),
            "data": nested(data, required=True),
        },
        optional=("id", "type", "meta"),
    )
