"""ActiveCampaign webhook contracts, version 1 (form bodies, parsed into nested dicts).

ActiveCampaign posts each webhook as form fields (developers.activecampaign.com/page/webhooks:
"each field option is sent as a POST parameter"): `type`, `date_time`, `initiated_by`,
`initiated_from`, `list`, `contact[id]`, `contact[email]`, … (field names as read by
PipedreamHQ/pipedream `components/activecampaign/sources`). The full per-type field list is not
published in a form we could confirm [U]: what our mapping reads is required, the rest is known,
and ActiveCampaign sources default to `on_unknown_fields = "warn"`.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.contracts.base import contract, nested

CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "ip",
    "tags",
    "orgname",
    "fields",
    "customer_acct_name",
    "customer_acct_id",
)
ENVELOPE_FIELDS = (
    "url",
    "initiated_by",
    "initiated_from",
    "list",
    "form",
    "campaign",
    "unsubscribe",
)

ContactV1 = contract(
    "ActiveCampaignContactV1",
    required={
        "id": fields.Str(required=True, validate=validate.Regexp(r"^[0-9]{1,20}$")),
        "email": fields.Str(required=True, validate=validate.Length(min=3, max=320)),
    },
    optional=CONTACT_FIELDS,
)


def _webhook(name: str, kind: str, **extra: fields.Field) -> type[Schema]:
    return contract(
        name,
        required={
            "type": fields.Str(required=True, validate=validate.Equal(kind)),
            "date_time": fields.Str(required=True, validate=validate.Length(min=10, max=40)),
            "contact": nested(ContactV1, required=True),
            **extra,
        },
        optional=ENVELOPE_FIELDS,
    )


CONTRACTS: dict[str, type[Schema]] = {
    "subscribe": _webhook("ActiveCampaignSubscribeV1", "subscribe"),
    "unsubscribe": _webhook("ActiveCampaignUnsubscribeV1", "unsubscribe"),
    "contact_tag_added": _webhook(
        "ActiveCampaignTagAddedV1",
        "contact_tag_added",
        tag=fields.Str(required=True, validate=validate.Length(min=1, max=255)),
    ),
}
