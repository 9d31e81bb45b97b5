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
from typing import Any

from marshmallow import fields

from pipeline.errors import BadPayload
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, Identified, SourceContext, Verdict
from pipeline.providers.mailchimp.destination import subscriber_hash
from pipeline.providers.shared.form_hooks import FormHookSource
from pipeline.providers.shared.instants import validate_zone, version_ms
from pipeline.providers.shared.options import StrictOptions
from pipeline.providers.shared.subscribers import Member
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


class MailchimpSourceOptions(StrictOptions):
    fired_at_timezone = fields.Str(load_default="UTC", validate=validate_zone)


def member_id(data: Mapping[str, Any]) -> str:
    """Mailchimp's member id is the subscriber hash; `cleaned` may carry only the address."""
    return str(data.get("id") or subscriber_hash(str(data["email"])))


class MailchimpSource(FormHookSource):
    name = "mailchimp"
    answers_get = True
    id_prefix = "mc_"
    no_type_message = "A Mailchimp webhook needs a 'type' field."
    # "YYYY-MM-DD HH:MM:SS" without a zone: read in `fired_at_timezone`
    time_field = "fired_at"
    member_kind = "mailchimp_member"
    options_schema = MailchimpSourceOptions
    contracts = CONTRACTS

    def identify(self, payload: Any, body: bytes, headers: Mapping[str, str]) -> Identified:
        identified = super().identify(payload, body, headers)
        if not isinstance(payload.get("data"), dict):
            raise BadPayload("missing_data", "A Mailchimp webhook needs 'data[...]' fields.")
        return identified

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched | None:
        """No API call (the payload is the whole state); the member's state versioned by
        `fired_at`, so a late retry of an older change never overrides a newer one."""
        if event.provider_type not in MEMBER_EVENTS:
            return None
        data, fired = payload["data"], self.stamped(ctx, payload)
        key = f"mailchimp:{data['list_id']}:{member_id(data)}"
        return Fetched(dict(data), key, version_ms(fired))

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
        key = f"mailchimp:{data['list_id']}:{member}:{kind}:{fired_at.replace(' ', 'T')}"
        found = Member(
            member,
            data.get("email") or merges.get("EMAIL"),
            first_name=merges.get("FNAME"),
            last_name=merges.get("LNAME"),
            status=status,
            list_id=data["list_id"],
        )
        return self.member_event(ctx, event, payload, canonical_type, key=key, member=found)


SOURCE = MailchimpSource()
