"""Mailchimp: audience webhooks in (a source) and subscribe, tag, unsubscribe out (a destination).

Destination. Marketing API 3.0 (mailchimp.com/developer/marketing/api): base
`https://<dc>.api.mailchimp.com/3.0`, HTTP Basic with any user name and the API key. Members are
addressed by the MD5 of the lower-cased address, and `PUT /lists/{list}/members/{hash}` is an
upsert, so retries and replays are harmless. Tags: `POST …/members/{hash}/tags` with
`status: active` (204).

Source. Audience webhooks (mailchimp.com/developer/marketing/guides/sync-audience-data-webhooks):
no signature, so the URL carries a secret (`/webhooks/<source>?key=…`, scheme `url_secret`, as
Mailchimp recommends); bodies are form-encoded (`data[merges][EMAIL]=…`); Mailchimp checks a new
URL with a GET, answered 200 (`answers_get`). Retries run for 75 minutes, so a delivery can arrive
late and out of order: the member's state carries `fired_at` as its version, and an older state
than one already processed is ignored. There is no event id: the id is a digest of the raw body,
so an identical re-post is a duplicate; the canonical key carries the member and `fired_at`, so a
re-post that differs in bytes still performs nothing twice.
- subscribe -> subscriber.added; unsubscribe -> subscriber.unsubscribed (status `deleted` when
  `data[action]=delete`); cleaned -> subscriber.unsubscribed with status `cleaned`: Mailchimp
  cleans an address that hard-bounced or complained, and mailing it from another tool would hurt
  the sender's reputation just the same.
- profile, upemail, campaign -> ignored with a reason: no canonical event says "profile changed"
  or "address changed", and a campaign's status is not about a subscriber.
- `fired_at` is "YYYY-MM-DD HH:MM:SS" without a zone. Mailchimp does not state the zone in the
  guide [U]; integrators observe UTC, so `fired_at_timezone` defaults to "UTC" and can be set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, fields

from pipeline import canonical
from pipeline.http import ApiClient
from pipeline.providers.base import (
    BadPayload,
    DeliveryRef,
    DestinationContext,
    DestinationProvider,
    Fetched,
    Identified,
    SourceContext,
    SourceProvider,
    StoredEvent,
    Verdict,
)
from pipeline.providers.common import (
    body_id,
    names,
    require_email,
    tags_for,
    validate_zone,
    wall_clock,
)
from schemas.contracts.mailchimp import CONTRACTS


class MailchimpOptions(Schema):
    class Meta:
        unknown = RAISE

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
        client = ApiClient(
            provider="mailchimp",
            base_url=(ctx.destination.api_base or "") + "/3.0",
            session=ctx.http,
            timeout=ctx.destination.timeout_seconds,
            auth=("stackwire", options["api_key"]),
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


# -- the source: audience webhooks -------------------------------------------------------------

# type -> (canonical type, the member's status afterwards)
MEMBER_EVENTS = {
    "subscribe": ("subscriber.added", "subscribed"),
    "unsubscribe": ("subscriber.unsubscribed", "unsubscribed"),
    "cleaned": ("subscriber.unsubscribed", "cleaned"),
}
IGNORED = {
    "profile": "profile_changes_are_not_mapped",
    "upemail": "address_changes_are_not_mapped",
    "campaign": "campaign_status_is_not_about_a_subscriber",
}


class MailchimpSourceOptions(Schema):
    class Meta:
        unknown = RAISE

    fired_at_timezone = fields.Str(load_default="UTC", validate=validate_zone)


def member_id(data: Mapping[str, Any]) -> str:
    """Mailchimp's member id is the subscriber hash; `cleaned` may carry only the address."""
    return str(data.get("id") or subscriber_hash(str(data["email"])))


class MailchimpSource(SourceProvider):
    name = "mailchimp"
    scheme = "url_secret"
    body_format = "form"
    answers_get = True
    stored_headers = ("Content-Type", "User-Agent")
    default_on_unknown_fields = "warn"  # the field lists of four of the six types are not published
    options_schema = MailchimpSourceOptions
    lanes = dict.fromkeys(CONTRACTS, "enrollments")
    contracts = CONTRACTS

    def identify(self, payload: Any, body: bytes, headers: Mapping[str, str]) -> Identified:
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(kind, str) or not kind:
            raise BadPayload("missing_event_type", "A Mailchimp webhook needs a 'type' field.")
        if not isinstance(payload.get("data"), dict):
            raise BadPayload("missing_data", "A Mailchimp webhook needs 'data[...]' fields.")
        return Identified(external_id=body_id("mc_", body), provider_type=kind)

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched | None:
        """No API call (the payload is the whole state); the member's state versioned by
        `fired_at`, so a late retry of an older change never overrides a newer one."""
        if event.provider_type not in MEMBER_EVENTS:
            return None
        data, fired = payload["data"], self._fired(ctx, payload)
        key = f"mailchimp:{data['list_id']}:{member_id(data)}"
        return Fetched(dict(data), key, int(fired.timestamp() * 1000))

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        kind = event.provider_type
        if kind not in MEMBER_EVENTS:
            return Verdict("ignore", IGNORED.get(kind, "unmapped_type"))
        canonical_type, status = MEMBER_EVENTS[kind]
        data = payload["data"]
        if kind == "unsubscribe" and data.get("action") == "delete":
            status = "deleted"
        merges = data.get("merges") if isinstance(data.get("merges"), dict) else {}
        member, fired_at = member_id(data), payload["fired_at"]
        return canonical.event(
            canonical_type,
            key=f"mailchimp:{data['list_id']}:{member}:{kind}:{fired_at.replace(' ', 'T')}",
            source=event.source,
            provider=self.name,
            occurred_at=self._fired(ctx, payload),
            contact=canonical.contact(
                data.get("email") or merges.get("EMAIL"),
                first_name=merges.get("FNAME") or None,
                last_name=merges.get("LNAME") or None,
                external_ids={"mailchimp_member": member},
            ),
            subscriber={"id": member, "list_id": data["list_id"], "status": status, "tags": []},
        )

    @staticmethod
    def _fired(ctx: SourceContext, payload: Any) -> datetime:
        return wall_clock(
            payload.get("fired_at"), ctx.source.options["fired_at_timezone"], "fired_at"
        )


SOURCE = MailchimpSource()
