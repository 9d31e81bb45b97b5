"""Held deliveries: kept while a destination is paused or its circuit is open, released after.

Nothing for a paused or broken destination is skipped: it waits here, visible, without burning
attempts, and goes out as soon as the destination answers again or an operator resumes it.
"""

from __future__ import annotations

import logging

from sqlalchemy import text

from pipeline.config.model import DestinationConfig
from pipeline.delivery.deadletter import dead_letter_delivery
from pipeline.delivery.gates import circuit
from pipeline.errors import ConfigurationError, FailureClass, PipelineError, RetryableError
from pipeline.flow.publish import publish_deliveries
from pipeline.log.alerts import raise_alert
from pipeline.runtime import Runtime

log = logging.getLogger(__name__)

HELD_DESTINATIONS = text("SELECT DISTINCT destination FROM deliveries WHERE status = 'held'")
# held since it was planned, or since an operator last replayed it from the dead-letter queue:
# a replay is a new chance, not the old deadline (which had passed, or it would not be dead)
HELD_SINCE = text(
    """
    SELECT d.id, d.lane,
           greatest(d.created_at, (SELECT max(l.replayed_at) FROM dead_letters l
                                   WHERE l.delivery_id = d.id)) AS since
    FROM deliveries d WHERE d.destination = :d AND d.status = 'held'
    """
)
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
    """For each destination with held work: release a few probes once its circuit may be tried,
    everything once it is closed (or its state was lost), alert when it stays open too long, and
    dead-letter what was held past its lane's `max_hold`."""
    report: dict[str, str] = {}
    with rt.engine.connect() as connection:
        held: list[str] = list(connection.execute(HELD_DESTINATIONS).scalars())
    for name in held:
        destination = rt.config.destinations.get(name)
        if destination is None:
            gone = ConfigurationError(
                f"destination {name!r} is no longer in the config", reason="unknown_destination"
            )
            report[name] = f"dead-lettered {dead_letter_destination(rt, name, gone)}"
            continue
        report[name] = _probe(rt, destination)
        expired = dead_letter_expired(rt, name)
        if expired:
            report[name] += f", {expired} held too long dead-lettered"
    return report


def _probe(rt: Runtime, destination: DestinationConfig) -> str:
    name = destination.name
    found = circuit.status(rt.redis, name)
    if found.state == circuit.CLOSED:
        return f"released {release_held(rt, name)}"
    if found.open_for > destination.circuit.alert_after:
        with rt.engine.begin() as connection:
            raise_alert(
                connection,
                "circuit_open",
                f"destination:{name}",
                f"{name} has been unavailable for {found.open_for / 60:.0f} minutes; its work is held",
                severity="critical",
            )
    if found.state == circuit.READY:
        # each released delivery takes one of the half-open circuit's probe tokens at the gate
        return f"probe {release_held(rt, name, limit=destination.circuit.probes)}"
    return found.state


def dead_letter_expired(rt: Runtime, destination: str) -> int:
    """Held work past its lane's deadline (counted from when it was planned or last replayed,
    whatever the holds and releases since): a destination down that long is a case for a human,
    not a longer wait."""
    lanes = rt.config.lanes
    with rt.engine.connect() as connection:
        rows = connection.execute(HELD_SINCE, {"d": destination}).all()
    now = rt.clock()
    expired = [row.id for row in rows if now - row.since.timestamp() > lanes[row.lane].max_hold]
    failure = RetryableError(
        f"{destination} stayed unavailable past the lane's max_hold; the work was held, never sent",
        reason="held_too_long",
        failure_class=FailureClass.DESTINATION_UNAVAILABLE,
    )
    for delivery_id in expired:
        dead_letter_delivery(rt, delivery_id, failure)
    return len(expired)


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
