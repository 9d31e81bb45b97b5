"""Mailchimp as a destination: subscribe, tag and unsubscribe list members (Marketing API v3)."""

from __future__ import annotations

import hashlib
from typing import Any

from marshmallow import fields

from pipeline.providers.base import DeliveryRef, DestinationContext, DestinationProvider
from pipeline.providers.shared.clients import destination_client
from pipeline.providers.shared.contacts import names, require_email
from pipeline.providers.shared.options import StrictOptions
from pipeline.providers.shared.products import tags_for


class MailchimpOptions(StrictOptions):
    api_key = fields.Str(required=True)
    list_id = fields.Str(required=True)
    double_opt_in = fields.Bool(load_default=False)
    tags = fields.List(fields.Str(), load_default=list)


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


class MailchimpDestination(DestinationProvider):
    name = "mailchimp"
    kind = "email"
    actions = {"subscribe": "enrollments", "tag": "enrollments", "unsubscribe": "enrollments"}
    options_schema = MailchimpOptions

    def perform(
        self, ctx: DestinationContext, delivery: DeliveryRef, event: dict[str, Any]
    ) -> dict[str, Any]:
        options = ctx.destination.options
        email = require_email(event)
        client = destination_client(
            ctx, "mailchimp", path="/3.0", auth=("stackwire", options["api_key"])
        )
        member = f"/lists/{options['list_id']}/members/{subscriber_hash(email)}"
        if delivery.verb == "unsubscribe":
            response = client.request(
                "PATCH", member, json={"status": "unsubscribed"}, accept=(404,)
            )
            return {"member": subscriber_hash(email), "found": response.status_code != 404}
        if delivery.verb == "subscribe":
            first, last = names(event)
            body = {
                "email_address": email,
                "status_if_new": "pending" if options["double_opt_in"] else "subscribed",
                "merge_fields": {k: v for k, v in (("FNAME", first), ("LNAME", last)) if v},
            }
            client.request("PUT", member, json=body)
        tags = tags_for(ctx.config, ctx.destination, event)
        if tags:
            payload = {
                "tags": [{"name": tag, "status": "active"} for tag in tags],
                "is_syncing": False,
            }
            client.request("POST", f"{member}/tags", json=payload)
        return {"member": subscriber_hash(email), "tags": tags}


DESTINATION = MailchimpDestination()
