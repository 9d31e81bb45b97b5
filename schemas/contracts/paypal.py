"""PayPal webhook contracts, version 1: the event envelope and its capture, refund or order.

Field lists follow PayPal's published schemas (developer.paypal.com/api/payments/v2 `capture`,
`refund`; developer.paypal.com/api/orders/v2 `order`; the webhook event envelope of
developer.paypal.com/api/webhooks/v1 `event`), as mirrored in api-evangelist/paypal
`json-schema/paypal-capture-schema.json` and `paypal-refund-schema.json`. Required is what our
mapping reads; the rest is merely known. PayPal adds fields without notice, so PayPal sources
default to `on_unknown_fields = "warn"`.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.contracts.base import contract, nested

PAYPAL_ID = r"^[A-Z0-9-]{1,64}$"
CAPTURE_STATUSES = ("COMPLETED", "DECLINED", "PARTIALLY_REFUNDED", "PENDING", "REFUNDED", "FAILED")
REFUND_STATUSES = ("CANCELLED", "FAILED", "PENDING", "COMPLETED")
ORDER_STATUSES = ("CREATED", "SAVED", "APPROVED", "VOIDED", "COMPLETED", "PAYER_ACTION_REQUIRED")

CAPTURE_FIELDS = (
    "invoice_id",
    "custom_id",
    "network_transaction_reference",
    "seller_protection",
    "final_capture",
    "seller_receivable_breakdown",
    "disbursement_mode",
    "links",
    "processor_response",
    "supplementary_data",
    "payee",
    "status_details",
    "create_time",
    "update_time",
)
REFUND_FIELDS = (
    "invoice_id",
    "custom_id",
    "acquirer_reference_number",
    "note_to_payer",
    "seller_payable_breakdown",
    "payer",
    "links",
    "status_details",
    "supplementary_data",
    "create_time",
    "update_time",
)
ORDER_FIELDS = (
    "intent",
    "payment_source",
    "purchase_units",
    "payer",
    "processing_instruction",
    "application_context",
    "links",
    "create_time",
    "update_time",
)
# `zts` appears in PayPal's own sample payloads (crypto checkout guide); undocumented
EVENT_FIELDS = ("event_version", "resource_version", "summary", "links", "zts")


def _id() -> fields.Str:
    return fields.Str(required=True, validate=validate.Regexp(PAYPAL_ID))


def _status(values: tuple[str, ...]) -> fields.Str:
    return fields.Str(required=True, validate=validate.OneOf(values))


MoneyV1 = contract(
    "PayPalMoneyV1",
    required={
        "currency_code": fields.Str(required=True, validate=validate.Regexp(r"^[A-Z]{3}$")),
        "value": fields.Str(required=True, validate=validate.Length(min=1, max=32)),
    },
)
CaptureV1 = contract(
    "PayPalCaptureV1",
    required={
        "id": _id(),
        "status": _status(CAPTURE_STATUSES),
        "amount": nested(MoneyV1, required=True),
    },
    optional=CAPTURE_FIELDS,
)
RefundV1 = contract(
    "PayPalRefundV1",
    required={
        "id": _id(),
        "status": _status(REFUND_STATUSES),
        "amount": nested(MoneyV1, required=True),
    },
    optional=REFUND_FIELDS,
)
OrderV1 = contract(
    "PayPalOrderV1",
    required={"id": _id(), "status": _status(ORDER_STATUSES)},
    optional=ORDER_FIELDS,
)


def _event(name: str, resource_type: str, resource: type[Schema]) -> type[Schema]:
    return contract(
        name,
        required={
            "id": fields.Str(required=True, validate=validate.Regexp(r"^WH-[A-Z0-9-]{1,100}$")),
            "event_type": fields.Str(required=True),
            "resource_type": fields.Str(required=True, validate=validate.Equal(resource_type)),
            "create_time": fields.AwareDateTime(required=True),
            "resource": nested(resource, required=True),
        },
        optional=EVENT_FIELDS,
    )


CaptureEventV1 = _event("PayPalCaptureEventV1", "capture", CaptureV1)
RefundEventV1 = _event("PayPalRefundEventV1", "refund", RefundV1)
OrderEventV1 = _event("PayPalOrderEventV1", "checkout-order", OrderV1)

CONTRACTS: dict[str, type[Schema]] = {
    "PAYMENT.CAPTURE.COMPLETED": CaptureEventV1,
    "PAYMENT.CAPTURE.REFUNDED": RefundEventV1,
    "CHECKOUT.ORDER.APPROVED": OrderEventV1,
}
