"""E-mail tools' audience webhooks (Mailchimp, ActiveCampaign): the way both arrive, written once.

Both post form fields (`type=subscribe&data[email]=…`), sign nothing (so the URL carries a
secret, scheme `url_secret`), and send no event id: the id is a digest of the raw body, so an
identical re-post is a duplicate. Each stamps a change with a wall-clock time field that may lack
a zone, read in the zone the source's `<field>_timezone` option names (UTC unless set).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from pipeline.errors import BadPayload
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Identified, SourceContext, SourceProvider
from pipeline.providers.shared.identity import body_id
from pipeline.providers.shared.instants import Refusals, parse_instant
from pipeline.providers.shared.subscribers import Member, subscriber_event
from pipeline.signatures.url_secret import UrlSecret


class FormHookSource(SourceProvider):
    """A source of form-encoded, unsigned audience hooks; a subclass names its prefix and field."""

    signature = UrlSecret()
    body_format = "form"
    # neither tool publishes the fields of every type: drift is recorded, not fatal
    default_on_unknown_fields = "warn"
    lane = "enrollments"  # every audience change is about one list member
    id_prefix: ClassVar[str]
    no_type_message: ClassVar[str]
    time_field: ClassVar[str]
    # what the contact's external id from this tool is called, e.g. "mailchimp_member"
    member_kind: ClassVar[str]

    def identify(self, payload: Any, body: bytes, headers: Mapping[str, str]) -> Identified:
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(kind, str) or not kind:
            raise BadPayload("missing_event_type", self.no_type_message)
        return Identified(external_id=body_id(self.id_prefix, body), provider_type=kind)

    def stamped(self, ctx: SourceContext, payload: Any) -> datetime:
        """When the tool says the change happened, a naive time read in the configured zone."""
        name = self.time_field
        return parse_instant(
            payload.get(name),
            Refusals.of_field("payload", name, malformed="is not a date and time"),
            naive_zone=ctx.source.options[f"{name}_timezone"],
            trim=True,
        )

    def member_event(
        self,
        ctx: SourceContext,
        event: StoredEvent,
        payload: Any,
        canonical_type: str,
        *,
        key: str,
        member: Member,
    ) -> dict[str, Any]:
        """The canonical event of one member's change, at the time the tool stamped on it."""
        return subscriber_event(
            canonical_type,
            key=key,
            event=event,
            provider=self.name,
            occurred_at=self.stamped(ctx, payload),
            member=member,
            id_kind=self.member_kind,
        )
