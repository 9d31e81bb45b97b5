"""Mailchimp audience webhook contracts, version 1 (form bodies, parsed into nested dicts).

Field lists follow Mailchimp's guide "Synchronize audience data with webhooks"
(mailchimp.com/developer/marketing/guides/sync-audience-data-webhooks) for `subscribe` and
`unsubscribe`; the other types' `data[...]` fields are not enumerated by Mailchimp (see
api-evangelist/mailchimp `openapi/mailchimp-marketing-webhooks-asyncapi.yml`), so for them we list
what integrators report and require only what our mapping reads. Every value is a string: the
body is form-encoded. `merges` holds the audience's own merge tags, so it is not modelled.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.contracts.base import contract, nested

FIRED_AT = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
MEMBER_FIELDS = ("email_type", "ip_opt", "ip_signup", "web_id", "merges")


def _envelope(name: str, kind: str, data: type[Schema]) -> type[Schema]:
    return contract(
        name,
        required={
            "type": fields.Str(required=True, validate=validate.Equal(kind)),
            "fired_at": fields.Str(required=True, validate=validate.Regexp(FIRED_AT)),
            "data": nested(data, required=True),
        },
    )


def _text() -> fields.Str:
    return fields.Str(required=True, validate=validate.Length(min=1, max=320))


SubscribeDataV1 = contract(
    "MailchimpSubscribeDataV1",
    required={"id": _text(), "list_id": _text(), "email": _text()},
    optional=MEMBER_FIELDS,
)
UnsubscribeDataV1 = contract(
    "MailchimpUnsubscribeDataV1",
    required={"id": _text(), "list_id": _text(), "email": _text()},
    optional=(*MEMBER_FIELDS, "action", "reason", "campaign_id"),
)
CleanedDataV1 = contract(
    "MailchimpCleanedDataV1",
    required={"list_id": _text(), "email": _text()},
    optional=("id", "campaign_id", "reason", "web_id"),
)
ProfileDataV1 = contract(
    "MailchimpProfileDataV1", optional=("id", "list_id", "email", *MEMBER_FIELDS)
)
UpemailDataV1 = contract(
    "MailchimpUpemailDataV1", optional=("list_id", "new_id", "new_email", "old_email")
)
CampaignDataV1 = contract(
    "MailchimpCampaignDataV1", optional=("id", "subject", "status", "reason", "list_id")
)

CONTRACTS: dict[str, type[Schema]] = {
    "subscribe": _envelope("MailchimpSubscribeV1", "subscribe", SubscribeDataV1),
    "unsubscribe": _envelope("MailchimpUnsubscribeV1", "unsubscribe", UnsubscribeDataV1),
    "cleaned": _envelope("MailchimpCleanedV1", "cleaned", CleanedDataV1),
    "profile": _envelope("MailchimpProfileV1", "profile", ProfileDataV1),
    "upemail": _envelope("MailchimpUpemailV1", "upemail", UpemailDataV1),
    "campaign": _envelope("MailchimpCampaignV1", "campaign", CampaignDataV1),
}
