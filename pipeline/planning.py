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

INSERT_DELIVERY = text(
    """
    INSERT INTO deliveries (event_id, action, destination, lane, idempotency_key)
    VALUES (:event_id, :action, :destination, :lane, :key)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
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
    planned: list[Planned] = []
    already: list[str] = []
    for action in config.actions_for(document["type"], event.source):
        lane = action_lane(config, action)
        row = connection.execute(
            INSERT_DELIVERY,
            {"event_id": event.id, "action": action.name, "destination": action.destination,
             "lane": lane, "key": idempotency_key(document, action)},
        ).first()  # fmt: skip
        if row is None:
            already.append(action.name)
        else:
            planned.append((row[0], lane, action.destination))
    detail: dict[str, Any] = {"planned": [p[0] for p in planned]}
    if already:
        # the same subject was planned before (another event about it, or a replay)
        detail["already_planned"] = already
    add_step(connection, event.id, "plan", "planned" if planned else "nothing_to_do", detail=detail)
    return planned
