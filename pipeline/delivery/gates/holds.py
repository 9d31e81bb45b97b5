"""Held deliveries: kept while a destination is paused or its circuit is open, released after.

Nothing for a paused or broken destination is skipped: it waits here, visible, without burning
attempts, and goes out as soon as the destination answers again or an operator resumes it.
"""

from __future__ import annotations

import logging

from sqlalchemy import text

from pipeline import keys
from pipeline.delivery.deadletter import dead_letter_delivery
from pipeline.delivery.gates import circuit
from pipeline.errors import ConfigurationError, PipelineError
from pipeline.flow.publish import publish_deliveries
from pipeline.runtime import Runtime

log = logging.getLogger(__name__)

RELEASE_HELD = text(
    """
    UPDATE deliveries SET status = 'pending', next_attempt_at = NULL, updated_at = now(),
        -- time spent held (paused, circuit open) does not count against the attempt window
        window_started_at = now()
    WHERE id IN (SELECT id FROM deliveries WHERE destination = :d AND status = 'held'
                 ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING id, lane
    """
)


def release_held(rt: Runtime, destination: str, *, limit: int = 100_000) -> int:
    """Back to pending and published: the circuit closed or an operator resumed the destination."""
    with rt.engine.begin() as connection:
        rows = connection.execute(RELEASE_HELD, {"d": destination, "limit": limit}).all()
    publish_deliveries(rt, [(row.id, row.lane, destination) for row in rows])
    if rows:
        log.info("released held deliveries", extra={"destination": destination, "count": len(rows)})
    return len(rows)


def probe_circuits(rt: Runtime) -> dict[str, str]:
    """For each destination with held work: send one probe when its circuit may be retried,
    or release everything when nothing holds it any more (state lost, or resumed)."""
    report: dict[str, str] = {}
    with rt.engine.connect() as connection:
        held: list[str] = list(
            connection.execute(
                text("SELECT DISTINCT destination FROM deliveries WHERE status = 'held'")
            ).scalars()
        )
    for name in held:
        destination = rt.config.destinations.get(name)
        if destination is None:
            gone = ConfigurationError(
                f"destination {name!r} is no longer in the config", reason="unknown_destination"
            )
            report[name] = f"dead-lettered {dead_letter_destination(rt, name, gone)}"
            continue
        gate = circuit.gate(rt.redis, destination)
        if gate == circuit.CLOSED:
            report[name] = f"released {release_held(rt, name)}"
        elif gate == circuit.PROBE:
            # let the probe token expire for the one delivery we release: it passes the gate
            rt.redis.delete(keys.circuit_probe(name))
            report[name] = f"probe {release_held(rt, name, limit=1)}"
        else:
            report[name] = gate
    return report


def pause(rt: Runtime, destination: str) -> None:
    circuit.set_paused(rt.redis, destination, True)
    log.warning("destination paused by operator", extra={"destination": destination})


def resume(rt: Runtime, destination: str) -> int:
    circuit.set_paused(rt.redis, destination, False)
    log.warning("destination resumed by operator", extra={"destination": destination})
    return release_held(rt, destination)


def dead_letter_destination(rt: Runtime, destination: str, exc: PipelineError) -> int:
    """A destination removed from the config: its open deliveries fail visibly, replayable later."""
    with rt.engine.connect() as connection:
        ids: list[int] = list(
            connection.execute(
                # not `in_flight`: a worker may still be sending it; its lease ends first
                text(
                    "SELECT id FROM deliveries WHERE destination = :d AND status IN "
                    "('pending', 'retrying', 'held')"
                ),
                {"d": destination},
            ).scalars()
        )
    for delivery_id in ids:
        dead_letter_delivery(rt, delivery_id, exc)
    return len(ids)
