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

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, fields

from pipeline.errors import BadPayload
from pipeline.log.events import StoredEvent
from pipeline.providers.base import (
    Fetched,
    Identified,
    SourceContext,
    SourceProvider,
    Verdict,
)
from pipeline.providers.mailchimp.destination import subscriber_hash
from pipeline.providers.shared import shape
from pipeline.providers.shared.ids import body_id
from pipeline.providers.shared.instants import validate_zone, wall_clock
from pipeline.signatures.url_secret import UrlSecret
from schemas.contracts.mailchimp import CONTRACTS

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
    signature = UrlSecret()
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
        return shape.event(
            canonical_type,
            key=f"mailchimp:{data['list_id']}:{member}:{kind}:{fired_at.replace(' ', 'T')}",
            source=event.source,
            provider=self.name,
            occurred_at=self._fired(ctx, payload),
            contact=shape.contact(
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
