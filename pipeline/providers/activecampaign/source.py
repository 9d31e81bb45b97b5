"""ActiveCampaign webhooks in: subscribe, unsubscribe and tag-added, form-encoded, unsigned.

developers.activecampaign.com/page/webhooks: fields arrive as POST parameters (`type`,
`date_time`, `list`, `contact[id]`, `contact[email]`, …); delivery is "at least once" and webhooks
are never retried. There is no signature, so the URL carries a secret (scheme `url_secret`), and
no event id, so the id is a digest of the raw body (an identical re-post is a duplicate) while the
canonical key (contact, type, list or tag, `date_time`) keeps a re-post that differs in bytes from
performing anything twice. A list subscription is a state versioned by `date_time`: an older
change arriving after a newer one is ignored.

Mapping: subscribe -> subscriber.added, unsubscribe -> subscriber.unsubscribed (both with
`list_id`), contact_tag_added -> subscriber.tagged. Other types are stored and ignored.
`date_time` carries an offset in the payloads integrators show [U]; a naive value is read in
`date_time_timezone` (default "UTC"), configurable for that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, fields

from pipeline.errors import BadPayload
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, Identified, SourceContext, SourceProvider, Verdict
from pipeline.providers.shared import shape
from pipeline.providers.shared.ids import body_id
from pipeline.providers.shared.instants import validate_zone, wall_clock
from pipeline.signatures.url_secret import UrlSecret
from schemas.contracts.activecampaign import CONTRACTS

# type -> (canonical type, the contact's list status afterwards)
LIST_EVENTS = {
    "subscribe": ("subscriber.added", "subscribed"),
    "unsubscribe": ("subscriber.unsubscribed", "unsubscribed"),
}


class ActiveCampaignSourceOptions(Schema):
    class Meta:
        unknown = RAISE

    date_time_timezone = fields.Str(load_default="UTC", validate=validate_zone)


class ActiveCampaignSource(SourceProvider):
    name = "activecampaign"
    signature = UrlSecret()
    body_format = "form"
    stored_headers = ("Content-Type", "User-Agent")
    default_on_unknown_fields = "warn"  # the per-type field lists are not confirmed
    options_schema = ActiveCampaignSourceOptions
    lanes = dict.fromkeys(CONTRACTS, "enrollments")
    contracts = CONTRACTS

    def identify(self, payload: Any, body: bytes, headers: Mapping[str, str]) -> Identified:
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(kind, str) or not kind:
            raise BadPayload("missing_event_type", "An ActiveCampaign webhook needs a 'type'.")
        return Identified(external_id=body_id("ac_", body), provider_type=kind)

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched | None:
        """No API call; the contact's status on the list, versioned by `date_time`."""
        if event.provider_type not in LIST_EVENTS:
            return None
        key = f"activecampaign:{payload.get('list') or '-'}:{payload['contact']['id']}"
        return Fetched(payload, key, int(self._when(ctx, payload).timestamp() * 1000))

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        kind, contact = event.provider_type, payload["contact"]
        if kind in LIST_EVENTS:
            canonical_type, status = LIST_EVENTS[kind]
            list_id, about, tags = payload.get("list") or None, payload.get("list") or "-", []
        else:
            canonical_type, status = "subscriber.tagged", None
            list_id, about, tags = None, payload["tag"], [payload["tag"]]
        return shape.event(
            canonical_type,
            key=f"activecampaign:{contact['id']}:{kind}:{about}:{payload['date_time']}",
            source=event.source,
            provider=self.name,
            occurred_at=self._when(ctx, payload),
            contact=shape.contact(
                contact["email"],
                first_name=contact.get("first_name") or None,
                last_name=contact.get("last_name") or None,
                external_ids={"activecampaign_contact": contact["id"]},
            ),
            subscriber={"id": contact["id"], "list_id": list_id, "status": status, "tags": tags},
        )

    @staticmethod
    def _when(ctx: SourceContext, payload: Any) -> datetime:
        zone = ctx.source.options["date_time_timezone"]
        return wall_clock(payload.get("date_time"), zone, "date_time")


SOURCE = ActiveCampaignSource()
