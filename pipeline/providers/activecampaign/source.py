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

from typing import Any

from marshmallow import fields

from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, SourceContext, Verdict
from pipeline.providers.shared.form_hooks import FormHookSource
from pipeline.providers.shared.instants import validate_zone, version_ms
from pipeline.providers.shared.options import StrictOptions
from pipeline.providers.shared.subscribers import Member
from schemas.contracts.activecampaign import CONTRACTS

# type -> (canonical type, the contact's list status afterwards)
LIST_EVENTS = {
    "subscribe": ("subscriber.added", "subscribed"),
    "unsubscribe": ("subscriber.unsubscribed", "unsubscribed"),
}


class ActiveCampaignSourceOptions(StrictOptions):
    date_time_timezone = fields.Str(load_default="UTC", validate=validate_zone)


class ActiveCampaignSource(FormHookSource):
    name = "activecampaign"
    id_prefix = "ac_"
    no_type_message = "An ActiveCampaign webhook needs a 'type'."
    # integrators show an offset [U]; a naive value is read in `date_time_timezone`
    time_field = "date_time"
    member_kind = "activecampaign_contact"
    options_schema = ActiveCampaignSourceOptions
    contracts = CONTRACTS

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched | None:
        """No API call; the contact's status on the list, versioned by `date_time`."""
        if event.provider_type not in LIST_EVENTS:
            return None
        key = f"activecampaign:{payload.get('list') or '-'}:{payload['contact']['id']}"
        return Fetched(payload, key, version_ms(self.stamped(ctx, payload)))

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
        key = f"activecampaign:{contact['id']}:{kind}:{about}:{payload['date_time']}"
        member = Member(
            contact["id"],
            contact["email"],
            first_name=contact.get("first_name"),
            last_name=contact.get("last_name"),
            status=status,
            tags=tags,
            list_id=list_id,
        )
        return self.member_event(ctx, event, payload, canonical_type, key=key, member=member)


SOURCE = ActiveCampaignSource()
