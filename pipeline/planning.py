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

from pipeline.config import Action, Config
from pipeline.events import add_step
from pipeline.providers.base import StoredEvent
from pipeline.providers.registry import destination_provider
from pipeline.queueing import Planned

# every action of the event in one statement; a key planned before inserts nothing
INSERT_DELIVERIES = text(
    """
    INSERT INTO deliveries (event_id, action, destination, lane, idempotency_key)
    SELECT :event_id, action, destination, lane, key
    FROM unnest(CAST(:actions AS text[]), CAST(:destinations AS text[]), CAST(:lanes AS text[]),
                CAST(:keys AS text[])) AS planned(action, destination, lane, key)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, action, lane, destination
    """
)


def idempotency_key(document: dict[str, Any], action: Action) -> str:
    seed = f"{document['key']}|{document['type']}|{action.name}".encode()
    return "sw_" + hashlib.sha256(seed).hexdigest()[:40]


def action_lane(config: Config, action: Action) -> str:
    destination = config.destinations[action.destination]
    if destination.lane:
        return destination.lane
    provider = destination_provider(destination.provider)
    assert provider is not None
    return provider.actions[action.verb]


def plan_deliveries(
    connection: Connection, config: Config, event: StoredEvent, document: dict[str, Any]
) -> list[Planned]:
    actions = config.actions_for(document["type"], event.source)
    if not actions:
        add_step(connection, event.id, "plan", "nothing_to_do", detail={"planned": []})
        return []
    rows = connection.execute(
        INSERT_DELIVERIES,
        {"event_id": event.id, "actions": [a.name for a in actions],
         "destinations": [a.destination for a in actions],
         "lanes": [action_lane(config, a) for a in actions],
         "keys": [idempotency_key(document, a) for a in actions]},
    ).all()  # fmt: skip
    planned: list[Planned] = [(row.id, row.lane, row.destination) for row in rows]
    inserted = {row.action for row in rows}
    already = [a.name for a in actions if a.name not in inserted]
    detail: dict[str, Any] = {"planned": [p[0] for p in planned]}
    if already:
        # the same subject was planned before (another event about it, or a replay)
        detail["already_planned"] = already
    add_step(connection, event.id, "plan", "planned" if planned else "nothing_to_do", detail=detail)
    return planned
