"""Destinations as an operator sees them: paused or not, the circuit, what is held, the budget."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from pipeline import keys
from pipeline.delivery.gates import circuit
from pipeline.delivery.gates.holds import pause, resume
from pipeline.ops import audit
from pipeline.runtime import Runtime

COUNTS = text(
    """
    SELECT destination, status, count(*) AS n FROM deliveries
    WHERE status IN ('pending', 'in_flight', 'retrying', 'held', 'dead')
    GROUP BY destination, status
    """
)


def destinations(rt: Runtime) -> list[dict[str, Any]]:
    with rt.autocommit.connect() as connection:
        counts: dict[str, dict[str, int]] = {}
        for row in connection.execute(COUNTS):
            counts.setdefault(row.destination, {})[row.status] = row.n
    listed = []
    for name, destination in rt.config.destinations.items():
        state = circuit.state(rt.redis, name)
        tokens = rt.redis.hget(keys.token_bucket(name), "tokens")
        by_status = counts.get(name, {})
        listed.append(
            {
                "name": name,
                "provider": destination.provider.name,
                "lane": destination.lane,
                "paused": state.get("paused") == "yes",
                "circuit": state.get("state", "closed"),
                "held": by_status.get("held", 0),
                "open": sum(by_status.get(s, 0) for s in ("pending", "in_flight", "retrying")),
                "dead": by_status.get("dead", 0),
                "rate_limit": {
                    "per_second": destination.rate_limit,
                    "burst": destination.burst,
                    "tokens_now": None if tokens is None else round(float(tokens), 2),
                },
            }
        )
    return listed


def set_paused(rt: Runtime, name: str, *, paused: bool, actor: str, reason: str | None) -> int:
    """Pauses or resumes; returns the deliveries released (0 on pause). Written to the audit."""
    released = 0
    if paused:
        pause(rt, name)
    else:
        released = resume(rt, name)
    with rt.engine.begin() as connection:
        audit.record(
            connection,
            actor=actor,
            action="destination.pause" if paused else "destination.resume",
            reason=reason,
            target=name,
            counts={"released": released},
        )
    return released
