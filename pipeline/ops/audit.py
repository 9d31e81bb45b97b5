"""The audit log: one row per request that changed something, written in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from pipeline.logging import redact

INSERT = text(
    """
    INSERT INTO audit_log (actor, action, reason, plan_id, target, event_ids, counts)
    VALUES (:actor, :action, :reason, :plan_id, :target, :event_ids, CAST(:counts AS jsonb))
    RETURNING id
    """
)


def record(
    connection: Connection,
    *,
    actor: str,
    action: str,
    reason: str | None = None,
    plan_id: str | None = None,
    target: str | None = None,
    event_ids: Sequence[int] = (),
    counts: dict[str, Any] | None = None,
) -> int:
    audit_id: int = connection.execute(
        INSERT,
        {
            "actor": actor,
            "action": action,
            "reason": redact(reason)[:1000] if reason else None,
            "plan_id": plan_id,
            "target": target,
            "event_ids": list(event_ids)[:10_000] or None,
            "counts": json.dumps(counts) if counts is not None else None,
        },
    ).scalar_one()
    return audit_id


def entries(
    connection: Connection, *, limit: int, before: int | None = None, action: str | None = None
) -> list[dict[str, Any]]:
    conditions: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if before is not None:
        conditions.append("id < :before")
        params["before"] = before
    if action:
        conditions.append("action = :action")
        params["action"] = action
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    sql = (
        "SELECT id, at, actor, action, reason, plan_id, target, "
        "coalesce(cardinality(event_ids), 0) AS events, counts FROM audit_log"
        f"{where} ORDER BY id DESC LIMIT :limit"
    )
    return [dict(row) for row in connection.execute(text(sql), params).mappings()]
