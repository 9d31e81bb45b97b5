"""Kajabi hook contracts, version 1.

A hook delivery is `{"id": <resource id>, "event": "purchase", "payload": [<JSON:API resources>]}`
(Kajabi OpenAPI v1.1.0, `POST /v1/hooks` "Actual Payloads", mirrored in api-evangelist/kajabi
`openapi/kajabi-webhooks-api-openapi.yml`; the resources follow `GET /v1/hooks/purchase_sample`).
The payload mixes resource types, so each resource is checked against the contract of its own
`type`; a type we do not read is accepted as it is.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from schemas.contracts.base import contract, nested

PURCHASE_FIELDS = (
    "payment_type",
    "multipay_payments_made",
    "opt_in",
    "raw_extra_contact_information",
    "effective_start_at",
    "cardholder_name",
    "billing_address_zip",
    "deactivated_at",
    "deactivation_reason",
    "coupon_code",
    "source",
    "referrer",
    "quantity",
    "created_at",
    "updated_at",
    "status",
    "trial",
    "trial_end_at",
    "payment_plan_total_payments",
)
CUSTOMER_FIELDS = (
    "name",
    "avatar",
    "external_user_id",
    "public_bio",
    "public_location",
    "public_website",
    "socials",
    "net_revenue",
    "sign_in_count",
    "last_request_at",
    "bounced_at",
    "created_at",
    "updated_at",
)
OFFER_FIELDS = (
    "title",
    "description",
    "internal_title",
    "currency",
    "price_in_cents",
    "payment_type",
    "token",
    "image_url",
    "payment_method",
    "price_description",
    "checkout_url",
    "recurring_offer",
    "subscription",
    "one_time",
    "single",
    "free",
)

PurchaseAttributesV1 = contract(
    "KajabiPurchaseAttributesV1",
    required={
        "amount_in_cents": fields.Int(required=True, allow_none=True),
        "currency": fields.Str(required=True, validate=validate.Length(equal=3)),
    },
    optional=PURCHASE_FIELDS,
)
CustomerAttributesV1 = contract(
    "KajabiCustomerAttributesV1",
    required={"email": fields.Email(required=True)},
    optional=CUSTOMER_FIELDS,
)
OfferAttributesV1 = contract("KajabiOfferAttributesV1", optional=OFFER_FIELDS)
ATTRIBUTES: dict[str, type[Schema]] = {
    "purchases": PurchaseAttributesV1,
    "customers": CustomerAttributesV1,
    "offers": OfferAttributesV1,
}


def _resource(name: str, attributes: type[Schema] | None) -> type[Schema]:
    return contract(
        name,
        required={
            "id": fields.Str(required=True),
            "type": fields.Str(required=True),
            "attributes": nested(attributes, required=True)
            if attributes
            else fields.Dict(required=True),
        },
        optional=("relationships", "links", "meta"),
    )


RESOURCES = {kind: _resource(f"Kajabi_{kind}_V1", schema) for kind, schema in ATTRIBUTES.items()}
OtherResourceV1 = _resource("KajabiResourceV1", None)


class JsonApiResource(fields.Field):
    """One JSON:API resource, checked against the contract of its own `type`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("A resource is an object.")
        schema = RESOURCES.get(str(value.get("type")), OtherResourceV1)
        return schema().load(value)


class PurchaseEventV1(Schema):
    class Meta:
        unknown = RAISE

    id = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    event = fields.Str(required=True, validate=validate.Equal("purchase"))
    payload = fields.List(JsonApiResource(), required=True)

    @validates("payload")
    def _has_a_purchase_and_its_customer(self, value: list[dict[str, Any]], **kwargs: Any) -> None:
        kinds = {resource["type"] for resource in value}
        for needed in ("purchases", "customers"):
            if needed not in kinds:
                raise ValidationError(f"The payload carries no {needed} resource.")


CONTRACTS: dict[str, type[Schema]] = {"purchase": PurchaseEventV1}
