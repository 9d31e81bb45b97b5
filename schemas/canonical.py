"""Canonical events: the small, versioned vocabulary every provider's events are mapped onto.

Flows in the config trigger on these names, whatever the provider. A canonical event carries a
`key` naming the business object it is about (`stripe:cs_123`); the downstream idempotency key
of every action is derived from it, so two provider events about the same purchase never
grant access twice.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

CANONICAL_VERSION = 1

CANONICAL_TYPES: tuple[str, ...] = (
    "purchase.completed",
    "purchase.failed",
    "purchase.refunded",
    "purchase.disputed",
    "subscription.started",
    "subscription.renewed",
    "subscription.canceled",
    "subscription.payment_failed",
    "enrollment.created",
    "enrollment.completed",
    "subscriber.added",
    "subscriber.tagged",
    "subscriber.unsubscribed",
    "booking.created",
    "booking.canceled",
    "booking.rescheduled",
    "analytics.event",
)
ANALYTICS_TYPE = re.compile(r"^analytics\.[a-z0-9_]{1,40}$")
_LANE_BY_FAMILY = {
    "purchase": "payments",
    "subscription": "payments",
    "enrollment": "enrollments",
    "subscriber": "enrollments",
    "booking": "enrollments",
    "analytics": "analytics",
}


def is_canonical_type(name: str) -> bool:
    return name in CANONICAL_TYPES or bool(ANALYTICS_TYPE.match(name))


def lane_of(canonical_type: str) -> str:
    """The queue an event of this type is processed on: money first, then access, then analytics."""
    return _LANE_BY_FAMILY[canonical_type.split(".", 1)[0]]


# ISO 4217 minor-unit exponents that are not 2 (iso.org list one, 2024). A purchase `amount` is an
# integer in minor units of its currency: 2112 USD cents, 1500 JPY yen, 1250 KWD fils (1.250 KWD).
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
_DECIMAL_AMOUNT = re.compile(r"^[0-9]{1,18}(?:\.[0-9]{1,8})?$")


def currency_exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS.get(currency.upper(), 2)


def to_minor_units(value: str, currency: str) -> int:
    """A decimal amount string ("21.12", "1500", "1.250") as integer minor units of `currency`.

    Strict: no sign, no thousands separators, no exponent, and no more precision than the
    currency has ("21.125" USD and "15.5" JPY raise ValueError; "1500.00" JPY is 1500).
    """
    if not isinstance(value, str) or not _DECIMAL_AMOUNT.match(value):
        raise ValueError(f"{value!r} is not a plain decimal amount")
    scaled = Decimal(value).scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value!r} has more decimals than {currency.upper()} allows")
    return int(scaled)


def to_major_units(amount: int, currency: str) -> float:
    """Minor units back to a decimal number for display (2112 usd -> 21.12, 1500 jpy -> 1500.0)."""
    return amount / 10 ** currency_exponent(currency)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class ContactSchema(_Strict):
    email = fields.Email(load_default=None)
    first_name = fields.Str(load_default=None, validate=validate.Length(max=200))
    last_name = fields.Str(load_default=None, validate=validate.Length(max=200))
    external_ids = fields.Dict(keys=fields.Str(), values=fields.Str(), load_default=dict)
    client_id = fields.Str(load_default=None)


class ItemSchema(_Strict):
    product = fields.Str(required=True)
    name = fields.Str(load_default=None)
    quantity = fields.Int(load_default=1, validate=validate.Range(min=0))
    amount = fields.Int(load_default=None)


class PurchaseSchema(_Strict):
    id = fields.Str(required=True)
    payment_id = fields.Str(load_default=None)
    amount = fields.Int(required=True)
    currency = fields.Str(required=True, validate=validate.Regexp(r"^[a-z]{3}$"))
    items = fields.List(fields.Nested(ItemSchema), load_default=list)
    invoice_number = fields.Str(load_default=None)
    reason = fields.Str(load_default=None)


class SubscriptionSchema(_Strict):
    id = fields.Str(required=True)
    status = fields.Str(required=True)
    items = fields.List(fields.Nested(ItemSchema), load_default=list)
    current_period_end = fields.DateTime(load_default=None)


class EnrollmentSchema(_Strict):
    id = fields.Str(required=True)
    course_id = fields.Str(required=True)
    course_name = fields.Str(load_default=None)
    user_id = fields.Str(load_default=None)
    completed = fields.Bool(load_default=False)


class SubscriberSchema(_Strict):
    id = fields.Str(load_default=None)
    list_id = fields.Str(load_default=None)
    tags = fields.List(fields.Str(), load_default=list)
    status = fields.Str(load_default=None)


class BookingSchema(_Strict):
    """A booking keeps the instant in UTC and the attendee's own IANA zone, never only an offset."""

    id = fields.Str(required=True)
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(load_default=None)
    timezone = fields.Str(required=True)
    local_start = fields.Str(load_default=None)
    event_name = fields.Str(load_default=None)
    status = fields.Str(load_default=None)
    rescheduled_from = fields.Str(load_default=None)


class AnalyticsSchema(_Strict):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=120))
    distinct_id = fields.Str(required=True)
    properties = fields.Dict(keys=fields.Str(), load_default=dict)


class CanonicalEventSchema(_Strict):
    type = fields.Str(required=True)
    version = fields.Int(load_default=CANONICAL_VERSION, validate=validate.Equal(CANONICAL_VERSION))
    key = fields.Str(required=True, validate=validate.Length(min=3, max=300))
    source = fields.Str(required=True)
    provider = fields.Str(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    contact = fields.Nested(ContactSchema, load_default=None)
    purchase = fields.Nested(PurchaseSchema, load_default=None)
    subscription = fields.Nested(SubscriptionSchema, load_default=None)
    enrollment = fields.Nested(EnrollmentSchema, load_default=None)
    subscriber = fields.Nested(SubscriberSchema, load_default=None)
    booking = fields.Nested(BookingSchema, load_default=None)
    analytics = fields.Nested(AnalyticsSchema, load_default=None)

    @validates_schema
    def _type_is_known_and_has_its_part(self, data: dict[str, Any], **kwargs: Any) -> None:
        name = data["type"]
        if not is_canonical_type(name):
            raise ValidationError(f"{name!r} is not a canonical event type.", "type")
        family = name.split(".", 1)[0]
        if data.get(family) is None:
            raise ValidationError(f"A {name} event needs its {family!r} part.", family)


def validate_canonical(document: dict[str, Any]) -> dict[str, Any]:
    """Raises ValidationError when a provider module built an event outside the contract."""
    loaded: dict[str, Any] = _canonical_schema().load(document)
    return loaded


@cache
def _canonical_schema() -> CanonicalEventSchema:
    return CanonicalEventSchema()  # reused: building a schema deep-copies all its fields
