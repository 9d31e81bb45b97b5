"""Claiming a delivery: a lease on its row (`status = in_flight`, `lease_until`).

A second worker, a broker redelivery or the sweeper's re-publish finds nothing to claim while the
lease lives, and a worker killed mid-call leaves a lease that expires, so the work is picked up again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from pipeline.providers.base import DeliveryRef

LEASE_SECONDS = 75  # longer than the hard task time limit (60 s), so a live worker keeps its lease


CLAIM = text(
    """
    UPDATE deliveries d SET status = 'in_flight', attempts = d.attempts + 1,
        lease_until = now() + make_interval(secs => :lease), claimed_by = :claimant,
        updated_at = now()
    FROM events e
    WHERE d.id = :id AND e.id = d.event_id
      AND ((d.status IN ('pending', 'retrying')
            -- a duplicate message must not jump a retry's backoff or a rate limit's wait
            AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= now() + interval '1 second'))
           OR (d.status = 'in_flight' AND (d.lease_until < now() OR d.claimed_by = :claimant)))
    RETURNING d.id, d.action, d.destination, d.lane, d.idempotency_key, d.attempts,
              d.window_started_at, e.canonical
    """
)


@dataclass(frozen=True)
class Claimed:
    ref: DeliveryRef
    destination: str
    lane: str
    window_started_at: datetime
    event: dict[str, Any]


def claim(connection: Connection, delivery_id: int, claimant: str | None) -> Claimed | None:
    """Leases the delivery. `claimant` is the task id: when a killed worker's message comes back
    (same task id) it takes its own lease back at once instead of waiting for it to expire."""
    params = {"id": delivery_id, "lease": LEASE_SECONDS, "claimant": claimant or "-"}
    row = connection.execute(CLAIM, params).first()
    if row is None:
        return None
    action = row.action
    ref = DeliveryRef(
        id=row.id,
        action=action,
        verb=action.split(".", 1)[1],
        idempotency_key=row.idempotency_key,
        attempt=row.attempts,
    )
    return Claimed(ref, row.destination, row.lane, row.window_started_at, row.canonical)
