"""Kit (ConvertKit) webhook contracts, version 1.

New webhook endpoints (developers.kit.com/webhooks/delivery-format, /webhooks/event-types): a
delivery `{"delivery_id", "events": [1..100 events of one type]}`, each event `{"id" (UUID),
"type", "created", "data": {"subscriber": {...}, "<related resource>": {...}}}`; the subscriber
object is the V4 API's (api.kit.com OpenAPI, `GET /v4/subscribers/{id}`). Legacy webhooks
(`/v4/webhooks`; ConvertKit/developers-documentation `_webhooks.md`) post `{"subscriber": {...}}`
only. The tag object of `subscriber.tag_added` (`{"id", "name"}`) is not spelled out by Kit [U].
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.contracts.base import contract, nested

MAX_EVENTS = 100
SUBSCRIBER_STATES = ("active", "cancelled", "bounced", "complained", "inactive")

SubscriberV1 = contract(
    "KitSubscriberV1",
    required={
        "id": fields.Int(required=True, strict=True),
        "email_address": fields.Str(required=True, validate=validate.Length(min=3, max=320)),
        "state": fields.Str(required=True, validate=validate.OneOf(SUBSCRIBER_STATES)),
    },
    optional=("first_name", "created_at", "fields", "canceled_at"),
)
TagV1 = contract(
    "KitTagV1",
    required={
        "id": fields.Int(required=True, strict=True),
        "name": fields.Str(required=True, validate=validate.Length(min=1, max=255)),
    },
    optional=("created_at",),
)
SubscriberDataV1 = contract(
    "KitSubscriberDataV1", required={"subscriber": nested(SubscriberV1, required=True)}
)
TagDataV1 = contract(
    "KitTagDataV1",
    required={
        "subscriber": nested(SubscriberV1, required=True),
        "tag": nested(TagV1, required=True),
    },
)


def _delivery(name: str, data: type[Schema]) -> type[Schema]:
    event = contract(
        f"{name}Event",
        required={
            "id": fields.Str(required=True, validate=validate.Length(min=1, max=64)),
            "type": fields.Str(required=True),
            "created": fields.Str(required=True),
            "data": nested(data, required=True),
        },
    )
    return contract(
        name,
        required={
            "delivery_id": fields.Int(required=True, strict=True),
            "events": fields.List(
                nested(event), required=True, validate=validate.Length(min=1, max=MAX_EVENTS)
            ),
        },
    )


SubscriberDeliveryV1 = _delivery("KitSubscriberDeliveryV1", SubscriberDataV1)
TagDeliveryV1 = _delivery("KitTagDeliveryV1", TagDataV1)

CONTRACTS: dict[str, type[Schema]] = {
    "subscriber.created": SubscriberDeliveryV1,
    "subscriber.activated": SubscriberDeliveryV1,
    "subscriber.unsubscribed": SubscriberDeliveryV1,
    "subscriber.bounced": SubscriberDeliveryV1,
    "subscriber.complained": SubscriberDeliveryV1,
    "subscriber.tag_added": TagDeliveryV1,
}

LegacySubscriberV1 = contract(
    "KitLegacySubscriberV1", required={"subscriber": nested(SubscriberV1, required=True)}
)
