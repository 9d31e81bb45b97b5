"""Claiming deliveries: a lease on each row (`status = in_flight`, `lease_until`).

A second worker, a broker redelivery or the sweeper's re-publish finds nothing to claim while the
lease lives, and a worker killed mid-call leaves a lease that expires, so the work is picked up
again. Work claimed but not tried (rate limited) goes back without spending an attempt.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from pipeline.config.model import DestinationConfig
from pipeline.delivery.policy import MAX_COUNTDOWN
from pipeline.errors import ConfigurationError
from pipeline.flow.publish import publish_delivery
from pipeline.metrics.definitions import metrics
from pipeline.providers.base import DeliveryRef
from pipeline.runtime import Runtime

LEASE_SECONDS = 75  # longer than the hard task time limit (60 s), so a live worker keeps its lease

CLAIM = text(
    """
    WITH prior AS (
        SELECT id, CASE WHEN status = 'in_flight' THEN lease_until END AS reclaimed_lease
        FROM deliveries WHERE id = :id FOR UPDATE
    )
    UPDATE deliveries d SET status = 'in_flight', attempts = d.attempts + 1, dispatches = 0,
        lease_until = now() + make_interval(secs => :lease), claimed_by = :claimant,
        updated_at = now()
    FROM events e, prior
    WHERE d.id = prior.id AND e.id = d.event_id
      AND ((d.status IN ('pending', 'retrying')
            -- a duplicate message must not jump a retry's backoff or a rate limit's wait
            AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= now() + interval '1 second'))
           OR (d.status = 'in_flight' AND (d.lease_until < now() OR d.claimed_by = :claimant)))
    RETURNING d.id, d.action, d.destination, d.lane, d.idempotency_key, d.attempts,
              d.window_started_at, d.subject, e.canonical, d.event_id, e.trace_id,
              prior.reclaimed_lease
    """
)
CLAIM_DUE = text(
    """
    WITH due AS (
        SELECT id FROM deliveries
        WHERE destination = :destination
          AND (status IN ('pending', 'retrying')
               OR (status = 'in_flight' AND lease_until < now()))
          AND (next_attempt_at IS NULL OR next_attempt_at <= now())
        ORDER BY id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries d SET status = 'in_flight', attempts = d.attempts + 1, dispatches = 0,
        lease_until = now() + make_interval(secs => :lease), claimed_by = NULL, updated_at = now()
    FROM due, events e
    WHERE d.id = due.id AND e.id = d.event_id
    RETURNING d.id, d.action, d.destination, d.lane, d.idempotency_key, d.attempts,
              d.window_started_at, d.subject, e.canonical, d.event_id, e.trace_id
    """
)
RELEASE = text(
    """
    UPDATE deliveries SET status = 'pending', attempts = attempts - 1, lease_until = NULL,
        next_attempt_at = now() + make_interval(secs => :delay), updated_at = now()
    WHERE id = ANY(:ids) AND status = 'in_flight'
    """
)


@dataclass(frozen=True)
class Claimed:
    ref: DeliveryRef
    destination: str
    lane: str
    window_started_at: datetime
    event: dict[str, Any]
    subject: str | None = None
    # when the lease was taken back from a worker that died: when that worker's call began
    reclaimed_call_started: float | None = None
    event_id: int | None = None
    trace_id: str | None = None


def claim(connection: Connection, delivery_id: int, claimant: str | None) -> Claimed | None:
    """Leases the delivery. `claimant` is the task id: when a killed worker's message comes back
    (same task id) it takes its own lease back at once instead of waiting for it to expire."""
    params = {"id": delivery_id, "lease": LEASE_SECONDS, "claimant": claimant or "-"}
    row = connection.execute(CLAIM, params).first()
    if row is None:
        return None
    found = _claimed(row)
    if row.reclaimed_lease is None:
        return found
    # a worker died holding it: its call started when that lease was taken
    return dataclasses.replace(
        found, reclaimed_call_started=row.reclaimed_lease.timestamp() - LEASE_SECONDS
    )


def claim_due(connection: Connection, destination: str, limit: int) -> list[Claimed]:
    """Leases up to `limit` deliveries due for a batching destination, oldest first."""
    params = {"destination": destination, "limit": limit, "lease": LEASE_SECONDS}
    return [_claimed(row) for row in connection.execute(CLAIM_DUE, params)]


def _claimed(row: Any) -> Claimed:
    ref = DeliveryRef(
        id=row.id,
        action=row.action,
        verb=row.action.split(".", 1)[1],
        idempotency_key=row.idempotency_key,
        attempt=row.attempts,
    )
    return Claimed(
        ref,
        row.destination,
        row.lane,
        row.window_started_at,
        row.canonical,
        row.subject,
        event_id=row.event_id,
        trace_id=row.trace_id,
    )


def configured_destination(rt: Runtime, name: str) -> DestinationConfig:
    destination = rt.config.destinations.get(name)
    if destination is None:
        raise ConfigurationError(
            f"destination {name!r} is no longer in the config", reason="unknown_destination"
        )
    return destination


def defer(rt: Runtime, destination: DestinationConfig, claimed: list[Claimed], wait: float) -> None:
    """Rate limited: back to pending without spending an attempt, published again after the wait."""
    with rt.engine.begin() as connection:
        connection.execute(RELEASE, {"ids": [c.ref.id for c in claimed], "delay": wait})
    counted = metrics().deliveries
    for item in claimed:
        counted.labels(item.destination, item.ref.action, "deferred").inc()
    if wait <= MAX_COUNTDOWN:  # a longer wait (a daily quota) is left to the sweeper
        first = claimed[0]
        publish_delivery(rt, first.ref.id, first.lane, destination.name, countdown=wait)
