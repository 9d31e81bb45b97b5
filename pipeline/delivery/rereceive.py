"""Replaying what the receiver set aside, as if it arrived again with today's provider code.

- a body quarantined as `unidentified` or `unreadable` is identified again: a new id and type
  update its row, which then runs like any event; an id already in the log makes it a duplicate
  or an id conflict, exactly as at the receiver;
- the second body of an id conflict becomes a new event: a new row whose external id is the
  original's plus a digest of that body, through the same flows and idempotency keys (a second
  replay finds the row and is a duplicate).

Each function runs inside the replay's transaction and says what to publish once it commits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from pipeline import keys
from pipeline.config.model import SourceConfig
from pipeline.flow.identify import UNIDENTIFIED, UNREADABLE, StoredHeaders, identify_body
from pipeline.log.alerts import raise_alert
from pipeline.log.events import add_step
from pipeline.log.ingest import conflict_message
from pipeline.log.models import EventStatus
from pipeline.providers.base import Identified
from pipeline.runtime import Runtime
from pipeline.storable import json_text

# outcomes after which the dead letter has done its work
RESOLVED = ("replayed", "duplicate", "conflict", "ignored")

QUARANTINED_EVENT = text(
    """
    SELECT source, body, headers FROM events
    WHERE id = :id AND status = 'quarantined' FOR UPDATE
    """
)
KNOWN_ID = text(
    """
    SELECT id, body_sha256 FROM events
    WHERE source = :source AND external_id = :external_id AND id <> :id FOR UPDATE
    """
)
REIDENTIFIED = text(
    """
    UPDATE events SET external_id = :external_id, provider_type = :provider_type, lane = :lane,
        status = :status, reason = :reason, replays = replays + 1, updated_at = now()
    WHERE id = :id
    """
)
SET_ASIDE = text(
    """
    UPDATE events SET status = 'ignored', reason = :reason, replays = replays + 1,
        updated_at = now()
    WHERE id = :id
    """
)
COUNT_REDELIVERY = text(
    """
    UPDATE events SET redeliveries = redeliveries + 1, last_redelivery_at = now() WHERE id = :id
    """
)
COUNT_CONFLICT = text(
    """
    UPDATE events SET conflicts = conflicts + 1, last_redelivery_at = now()
    WHERE id = :id RETURNING external_id
    """
)
CONFLICT_LETTER = text(
    """
    INSERT INTO dead_letters (event_id, step, failure_class, reason, error, payload, body)
    VALUES (:event_id, 'receive', 'contract', 'id_conflict', :error, CAST(:payload AS jsonb),
            :body)
    """
)
CONFLICT_BODY = text(
    """
    SELECT d.body, d.payload, e.source, e.external_id FROM dead_letters d
    JOIN events e ON e.id = d.event_id WHERE d.id = :id
    """
)
NEW_EVENT = text(
    """
    INSERT INTO events (source, provider, external_id, provider_type, lane, status, reason, body,
                        headers, body_sha256, replays)
    VALUES (:source, :provider, :external_id, :provider_type, :lane, :status, :reason, :body,
            CAST(:headers AS jsonb), :digest, 1)
    ON CONFLICT (source, external_id) DO NOTHING
    RETURNING id
    """
)


@dataclass(frozen=True)
class Reopened:
    """What a replay did, and the task to publish after its transaction commits."""

    outcome: str
    publish: tuple[str, int, str] | None = None


def replay_received(
    connection: Connection, rt: Runtime, dead_letter_id: int, event_id: int, reason: str
) -> Reopened:
    if reason == "id_conflict":
        return _conflict_as_new_event(connection, rt, dead_letter_id)
    if reason in (UNIDENTIFIED, UNREADABLE):
        return _identify_again(connection, rt, event_id)
    return Reopened("not_replayable")


def derived_id(external_id: str, body: bytes) -> str:
    """The id of a conflicting body replayed as its own event: stable, so a second replay finds it."""
    return f"{external_id}~{hashlib.sha256(body).hexdigest()[:16]}"


def _identify_again(connection: Connection, rt: Runtime, event_id: int) -> Reopened:
    row = connection.execute(QUARANTINED_EVENT, {"id": event_id}).first()
    source = rt.config.sources.get(row.source) if row else None
    if row is None or source is None:
        return Reopened("not_replayable")
    body = bytes(row.body)
    found = identify_body(source, body, StoredHeaders(row.headers))
    if found.quarantine is not None:
        return Reopened("still_unreadable")
    identified = found.identified
    known = connection.execute(
        KNOWN_ID, {"source": source.name, "external_id": identified.external_id, "id": event_id}
    ).first()
    if known is not None:
        return _already_known(
            connection,
            source=source,
            event_id=event_id,
            known=known,
            body=body,
            headers=row.headers,
        )
    lane = source.provider.lane_for(identified.provider_type)
    connection.execute(REIDENTIFIED, _reidentified(event_id, identified, lane))
    add_step(
        connection,
        event_id,
        "replay",
        "identified",
        detail={"external_id": identified.external_id, "provider_type": identified.provider_type},
    )
    return Reopened("replayed", (keys.VERIFY, event_id, lane)) if lane else Reopened("ignored")


def _reidentified(event_id: int, identified: Identified, lane: str | None) -> dict[str, Any]:
    return {
        "id": event_id,
        "external_id": identified.external_id,
        "provider_type": identified.provider_type,
        "lane": lane or "analytics",
        "status": EventStatus.RECEIVED if lane else EventStatus.IGNORED,
        "reason": None if lane else "unmapped_type",
    }


def _already_known(
    connection: Connection,
    *,
    source: SourceConfig,
    event_id: int,
    known: Any,
    body: bytes,
    headers: dict[str, str],
) -> Reopened:
    """As at the receiver: the same body is a redelivery, another body an id conflict."""
    if bytes(known.body_sha256) == hashlib.sha256(body).digest():
        connection.execute(COUNT_REDELIVERY, {"id": known.id})
        connection.execute(SET_ASIDE, {"id": event_id, "reason": "duplicate"})
        return Reopened("duplicate")
    external_id: str = connection.execute(COUNT_CONFLICT, {"id": known.id}).scalar_one()
    message = conflict_message(source.name, external_id)
    payload = {"body_sha256": hashlib.sha256(body).hexdigest(), "headers": headers}
    connection.execute(
        CONFLICT_LETTER,
        {"event_id": known.id, "error": message, "payload": json_text(payload), "body": body},
    )
    raise_alert(connection, "event_id_conflict", source.name, message, severity="critical")
    connection.execute(SET_ASIDE, {"id": event_id, "reason": "id_conflict"})
    return Reopened("conflict")


def _conflict_as_new_event(connection: Connection, rt: Runtime, dead_letter_id: int) -> Reopened:
    row = connection.execute(CONFLICT_BODY, {"id": dead_letter_id}).first()
    source = rt.config.sources.get(row.source) if row else None
    if row is None or row.body is None or source is None:
        return Reopened("not_replayable")  # a conflict recorded before bodies were kept
    body, headers = bytes(row.body), dict((row.payload or {}).get("headers") or {})
    found = identify_body(source, body, StoredHeaders(headers))
    if found.quarantine is not None:
        return Reopened("still_unreadable")
    kind = found.identified.provider_type
    lane = source.provider.lane_for(kind)
    new_id = connection.execute(
        NEW_EVENT,
        {
            "source": source.name,
            "provider": source.provider.name,
            "external_id": derived_id(row.external_id, body),
            "provider_type": kind,
            "lane": lane or "analytics",
            "status": EventStatus.RECEIVED if lane else EventStatus.IGNORED,
            "reason": None if lane else "unmapped_type",
            "body": body,
            "headers": json_text(headers),
            "digest": hashlib.sha256(body).digest(),
        },
    ).scalar()
    if new_id is None:
        return Reopened("duplicate")  # replayed before: that event is the one
    add_step(connection, new_id, "replay", "from_conflict", detail={"dead_letter": dead_letter_id})
    return Reopened("replayed", (keys.VERIFY, new_id, lane)) if lane else Reopened("ignored")
