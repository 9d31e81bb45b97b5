"""Teachable webhook contracts, version 1.

The envelope `{type, id, livemode, created, hook_event_id, object}` and the objects' fields follow
docs.teachable.com/docs/available-events as reproduced in public integrations
(cbraegelmann/HERDTeachableHubspot `tests/fixtures/enrollmentCompletedPayload.js`, observed
deliveries in `teachablePayloadShapes.route.test.js`) and the transaction object of
api-evangelist/teachable `json-schema/teachable-transaction.json`. Teachable documents no field
list of its own, so unknown fields default to "warn" for Teachable sources.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.contracts.base import contract, nested

ENVELOPE_FIELDS = ("livemode", "hook_event_id")
ENROLLMENT_FIELDS = (
    "created_at",
    "updated_at",
    "primary_course_id",
    "sale_id",
    "is_active",
    "enrolled_at",
    "percent_complete",
    "has_full_access",
    "course_progress_id",
    "certificate_serial_number",
    "expires_at",
    "completed_at",
)
TRANSACTION_FIELDS = (
    "sale_id",
    "created_at",
    "purchased_at",
    "charge",
    "final_price",
    "tax_charge",
    "revenue",
    "status",
    "has_chargeback",
    "chargeback_fee",
    "affiliate_id",
    "affiliate_fees",
    "author_id",
    "author_fees",
    "coupon_id",
    "refunded_at",
    "amount_refunded",
    "pricing_plan",
    "course",
    "sale",
)

UserV1 = contract("TeachableUserV1", optional=("id", "email", "name", "role", "school_id", "src"))
CourseV1 = contract("TeachableCourseV1", optional=("id", "name"))
EnrollmentV1 = contract(
    "TeachableEnrollmentV1",
    required={
        "id": fields.Int(required=True),
        "user_id": fields.Int(required=True),
        "course_id": fields.Int(required=True),
    },
    optional=ENROLLMENT_FIELDS,
    user=nested(UserV1),
    course=nested(CourseV1),
)
TransactionV1 = contract(
    "TeachableTransactionV1",
    required={
        "id": fields.Int(required=True),
        "user_id": fields.Int(required=True),
        "pricing_plan_id": fields.Int(required=True),
        "currency": fields.Str(required=True, validate=validate.Length(equal=3)),
    },
    optional=TRANSACTION_FIELDS,
    user=nested(UserV1),
)


def _event(name: str, obj: type[Schema]) -> type[Schema]:
    return contract(
        name,
        required={
            "type": fields.Str(required=True),
            "id": fields.Int(required=True),
            "created": fields.AwareDateTime(required=True),
            "object": nested(obj, required=True),
        },
        optional=ENVELOPE_FIELDS,
    )


EnrollmentEventV1 = _event("TeachableEnrollmentEventV1", EnrollmentV1)
TransactionEventV1 = _event("TeachableTransactionEventV1", TransactionV1)

CONTRACTS: dict[str, type[Schema]] = {
    "Enrollment.created": EnrollmentEventV1,
    "Enrollment.completed": EnrollmentEventV1,
    "Transaction.created": TransactionEventV1,
    "Transaction.refunded": TransactionEventV1,
}
