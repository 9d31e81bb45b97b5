"""Thinkific webhook contracts, version 1.

Envelope and payload fields follow Thinkific's published samples (support.thinkific.dev
"Webhooks Documentation" 4422658311703, support.thinkific.com "Webhook Payload Samples"
360042258053, and a Thinkific staff gist of enrollment payloads, mattapayne/4d51d024).
The payload is a pointer: we rely on the envelope and the object's id, and re-read the rest.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.contracts.base import contract, nested

ENVELOPE_FIELDS = ("tenant_id",)
USER_FIELDS = ("id", "email", "first_name", "last_name")
ENROLLMENT_FIELDS = (
    "activated_at",
    "completed_at",
    "course_id",
    "created_at",
    "expiry_date",
    "free_trial",
    "percentage_completed",
    "started_at",
    "updated_at",
)
ORDER_FIELDS = (
    "affiliate_referral_code",
    "amount_cents",
    "amount_dollars",
    "billing_name",
    "coupon",
    "created_at",
    "order_number",
    "payment_type",
    "product_id",
    "product_name",
    "status",
    "items",
    "subscription",
)

UserV1 = contract("ThinkificUserV1", optional=USER_FIELDS)
CourseV1 = contract("ThinkificCourseV1", optional=("id", "name"))
EnrollmentV1 = contract(
    "ThinkificEnrollmentV1",
    required={"id": fields.Int(required=True)},
    optional=ENROLLMENT_FIELDS,
    user=nested(UserV1),
    course=nested(CourseV1),
)
OrderV1 = contract(
    "ThinkificOrderV1",
    required={"id": fields.Int(required=True)},
    optional=ORDER_FIELDS,
    user=nested(UserV1),
)


def _event(name: str, resource: str, payload: type[Schema]) -> type[Schema]:
    return contract(
        name,
        required={
            "id": fields.Str(required=True, validate=validate.Length(min=1, max=100)),
            "resource": fields.Str(required=True, validate=validate.Equal(resource)),
            "action": fields.Str(required=True),
            "created_at": fields.AwareDateTime(required=True),
            "payload": nested(payload, required=True),
        },
        optional=ENVELOPE_FIELDS,
    )


EnrollmentEventV1 = _event("ThinkificEnrollmentEventV1", "enrollment", EnrollmentV1)
OrderEventV1 = _event("ThinkificOrderEventV1", "order", OrderV1)

CONTRACTS: dict[str, type[Schema]] = {
    "enrollment.created": EnrollmentEventV1,
    "enrollment.completed": EnrollmentEventV1,
    "order.created": OrderEventV1,
}
