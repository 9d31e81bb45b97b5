"""From a canonical event to deliveries: one row per action the flows ask for, keyed for once-only.

The idempotency key comes from the canonical subject (`stripe:cs_123`), the canonical type and the
action, never from the webhook: a redelivery, a replay, a second provider event about the same
purchase or a reconciliation backfill all land on the same key, and the unique constraint on it
means the action is planned, and so performed, once.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, text

from pipeline.config.model import Action, Config
from pipeline.flow.publish import Planned
from pipeline.log.events import StoredEvent, add_step

# every action of the event and the `plan` step in one statement; a key planned before inserts
# nothing and is named in the step as already planned (another event about the same subject,
# or a replay)
INSERT_DELIVERIES = text(
    """
    WITH wanted AS (
        SELECT * FROM unnest(CAST(:actions AS text[]), CAST(:destinations AS text[]),
                             CAST(:lanes AS text[]), CAST(:keys AS text[]))
            AS planned(action, destination, lane, key)
    ), inserted AS (
        INSERT INTO deliveries (event_id, action, destination, lane, idempotency_key, subject)
        SELECT :event_id, action, destination, lane, key, :subject FROM wanted
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id, action, lane, destination
    ), step AS (
        INSERT INTO event_steps (event_id, step, outcome, detail)
        SELECT :event_id, 'plan',
               CASE WHEN count(i.id) > 0 THEN 'planned' ELSE 'nothing_to_do' END,
               jsonb_strip_nulls(jsonb_build_object(
                   'planned', coalesce(jsonb_agg(i.id) FILTER (WHERE i.id IS NOT NULL), '[]'),
                   'already_planned', (SELECT jsonb_agg(w.action) FROM wanted w
                                       WHERE w.action NOT IN (SELECT action FROM inserted))))
        FROM (SELECT 1) AS one LEFT JOIN inserted i ON true
    )
    SELECT id, action, lane, destination FROM inserted
    """
)
# a revoke was planned: the same purchase's grants not yet sent will never be
CANCEL_GRANTS = text(
    """
    WITH cancelled AS (
        UPDATE deliveries SET status = 'cancelled', lease_until = NULL, next_attempt_at = NULL,
            last_error = 'cancelled: revoked before it was sent', updated_at = now()
        WHERE subject = :subject AND action = ANY(:grants)
          AND status IN ('pending', 'retrying', 'held')
        RETURNING id, event_id
    )
    INSERT INTO event_steps (event_id, step, outcome, detail)
    SELECT event_id, 'cancel', 'cancelled',
           jsonb_build_object('delivery', id, 'revoked_by_event', CAST(:event_id AS bigint))
    FROM cancelled
    """
)


def idempotency_key(document: dict[str, Any], action: Action) -> str:
    seed = f"{document['key']}|{document['type']}|{action.name}".encode()
    return "sw_" + hashlib.sha256(seed).hexdigest()[:40]


def action_lane(config: Config, action: Action) -> str:
    destination = config.destinations[action.destination]
    if destination.lane:
        return destination.lane
    return destination.provider.actions[action.verb]


def plan_deliveries(
    connection: Connection, config: Config, event: StoredEvent, document: dict[str, Any]
) -> list[Planned]:
    actions = config.actions_for(document["type"], event.source)
    subject = subject_of(document)
    if not actions:
        add_step(connection, event.id, "plan", "nothing_to_do", detail={"planned": []})
        return []
    rows = connection.execute(
        INSERT_DELIVERIES,
        {
            "event_id": event.id,
            "actions": [a.name for a in actions],
            "destinations": [a.destination for a in actions],
            "lanes": [action_lane(config, a) for a in actions],
            "keys": [idempotency_key(document, a) for a in actions],
            "subject": subject,
        },
    ).all()
    grants = granted_by(config, actions)
    if grants and subject:
        connection.execute(
            CANCEL_GRANTS, {"subject": subject, "grants": grants, "event_id": event.id}
        )
    return [(row.id, row.lane, row.destination) for row in rows]


def subject_of(document: dict[str, Any]) -> str | None:
    """The purchase or subscription the event is about, the same for its grant and its revoke."""
    for part in ("purchase", "subscription"):
        found = document.get(part)
        if found and found.get("id"):
            return f"{document['provider']}:{part}:{found['id']}"
    return None


def granted_by(config: Config, actions: list[Action]) -> list[str]:
    """The grant actions (`courses.enroll`) these revoke actions (`courses.unenroll`) undo."""
    grants = []
    for action in actions:
        grant = config.destinations[action.destination].provider.revokes.get(action.verb)
        if grant:
            grants.append(f"{action.destination}.{grant}")
    return grants
