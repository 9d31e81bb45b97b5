"""Reading events and moving their status forward, each move written as a step of the trace.

A move names the status it expects (`WHERE status = :expected`), so two workers racing on the
same event cannot both move it: the loser sees `False` and stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from pipeline.storable import json_text

LOAD_EVENT = text(
    """
    SELECT id, source, provider, external_id, provider_type, lane, body, headers, received_at,
           status, fetched, trace_id
    FROM events WHERE id = :id
    """
)

MOVE_EVENT = text(
    """
    WITH moved AS (
        UPDATE events SET status = :to, reason = :reason, updated_at = now(), dispatches = 0
        WHERE id = :id AND status = :expected
        RETURNING id
    )
    INSERT INTO event_steps (event_id, step, outcome, duration_ms, detail)
    SELECT id, :step, :to, :duration_ms, CAST(:detail AS jsonb) FROM moved
    RETURNING event_id
    """
)

ADD_STEP = text(
    """
    INSERT INTO event_steps (event_id, step, outcome, duration_ms, detail)
    VALUES (:id, :step, :outcome, :duration_ms, CAST(:detail AS jsonb))
    """
)


def load_event(connection: Connection, event_id: int) -> StoredEvent | None:
    row = connection.execute(LOAD_EVENT, {"id": event_id}).mappings().first()
    if row is None:
        return None
    return StoredEvent(
        id=row["id"],
        source=row["source"],
        provider=row["provider"],
        external_id=row["external_id"],
        provider_type=row["provider_type"],
        lane=row["lane"],
        body=bytes(row["body"]),
        headers=row["headers"],
        received_at=row["received_at"],
        trace_id=row["trace_id"],
        status=row["status"],
        fetched=row["fetched"],
    )


def move(
    connection: Connection,
    event_id: int,
    *,
    expected: str,
    to: str,
    step: str,
    reason: str | None = None,
    duration_ms: float | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Moves the event from `expected` to `to` and records the step; False if it was not there."""
    moved = connection.execute(
        MOVE_EVENT,
        {
            "id": event_id,
            "expected": expected,
            "to": to,
            "reason": reason,
            "step": step,
            "duration_ms": duration_ms,
            "detail": _json(detail, reason),
        },
    ).first()
    return moved is not None


def add_step(
    connection: Connection,
    event_id: int,
    step: str,
    outcome: str,
    *,
    duration_ms: float | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    connection.execute(
        ADD_STEP,
        {
            "id": event_id,
            "step": step,
            "outcome": outcome,
            "duration_ms": duration_ms,
            "detail": _json(detail, None),
        },
    )


def _json(detail: dict[str, Any] | None, reason: str | None) -> str | None:
    if reason is not None:
        detail = {"reason": reason, **(detail or {})}
    return json_text(detail) if detail else None


@dataclass(frozen=True)
class StoredEvent:
    """An event row as the tasks see it."""

    id: int
    source: str
    provider: str
    external_id: str
    provider_type: str
    lane: str
    body: bytes
    headers: Mapping[str, str]
    received_at: datetime
    status: str
    fetched: dict[str, Any] | None = None
    trace_id: str | None = None
