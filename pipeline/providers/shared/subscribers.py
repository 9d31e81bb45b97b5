"""E-mail tools' list members (Mailchimp, ActiveCampaign, Kit) as canonical subscriber events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.log.events import StoredEvent
from pipeline.providers.shared import shape


@dataclass(frozen=True)
class Member:
    """Who a hook is about, as the tool names them; a blank name counts as none."""

    id: str
    email: str | None
    first_name: str | None = None
    last_name: str | None = None
    status: str | None = None
    tags: list[str] = field(default_factory=list)
    list_id: str | None = None
    # Kit has no lists: its subscriber part carries no list_id at all
    listed: bool = True

    def part(self) -> dict[str, Any]:
        listed = {"list_id": self.list_id} if self.listed else {}
        return {"id": self.id, **listed, "status": self.status, "tags": self.tags}


def subscriber_event(
    canonical_type: str,
    *,
    key: str,
    event: StoredEvent,
    provider: str,
    occurred_at: datetime | float | int,
    member: Member,
    id_kind: str,
) -> dict[str, Any]:
    """The canonical event of one member's change; `id_kind` names the tool's id of them in the
    contact's external ids (`mailchimp_member`, `kit_subscriber`)."""
    return shape.event(
        canonical_type,
        key=key,
        source=event.source,
        provider=provider,
        occurred_at=occurred_at,
        contact=shape.contact(
            member.email,
            first_name=member.first_name or None,
            last_name=member.last_name or None,
            external_ids={id_kind: member.id},
        ),
        subscriber=member.part(),
    )
