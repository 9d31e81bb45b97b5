"""The gates as the delivery engine sees them: hold work while the destination is gated, tell the
breaker how each call went, and keep every change of the breaker's state as a row."""

from __future__ import annotations

import logging

from sqlalchemy import text

from pipeline.config.model import DestinationConfig
from pipeline.delivery.claim import Claimed
from pipeline.delivery.gates import circuit, ratelimit
from pipeline.delivery.gates.holds import release_held
from pipeline.errors import PipelineError, RetryableError
from pipeline.metrics.definitions import metrics
from pipeline.runtime import Runtime

log = logging.getLogger(__name__)

HOLD = text(
    """
    UPDATE deliveries SET status = 'held', attempts = attempts - 1, lease_until = NULL,
        updated_at = now()
    WHERE id = ANY(:ids) AND status = 'in_flight'
    """
)
RECORD_TRANSITION = text(
    """
    INSERT INTO circuit_transitions (destination, to_state, calls, failures, cooldown_seconds)
    VALUES (:destination, :to_state, :calls, :failures, :cooldown)
    """
)


def hold_if_gated(rt: Runtime, destination: DestinationConfig, claimed: list[Claimed]) -> bool:
    """Holds the claimed deliveries (without spending an attempt) when the destination is paused
    or its circuit is open; False when they may go (closed, or they are its probes)."""
    gate = circuit.gate(rt.redis, destination)
    record_transition(rt, gate.transition)
    if gate.passes:
        return False
    with rt.engine.begin() as connection:
        connection.execute(HOLD, {"ids": [c.ref.id for c in claimed]})
    counted = metrics().deliveries
    for item in claimed:
        counted.labels(item.destination, item.ref.action, "held").inc()
    return True


def after_failure(rt: Runtime, destination: DestinationConfig, exc: PipelineError) -> None:
    """A 429 backs every worker off for its Retry-After (not a breaker failure); any other
    unavailability counts to the breaker's window. A refusal (4xx) says the destination is up."""
    if isinstance(exc, RetryableError) and exc.http_status == 429:
        ratelimit.back_off(rt.redis, destination.name, exc.retry_after or 1.0)
        return
    if isinstance(exc, RetryableError):
        record_transition(rt, circuit.record_failure(rt.redis, destination))
    else:
        after_success(rt, destination)


def after_success(rt: Runtime, destination: DestinationConfig) -> None:
    """A success counts to the window; one that closes a half-open circuit releases its work."""
    transition = circuit.record_success(rt.redis, destination)
    record_transition(rt, transition)
    if transition is not None and transition.to_state == circuit.CLOSED:
        release_held(rt, destination.name)


def record_transition(rt: Runtime, transition: circuit.Transition | None) -> None:
    if transition is None:
        return
    metrics().circuit_transitions.labels(transition.destination, transition.to_state).inc()
    log.warning(
        "circuit %s",
        transition.to_state,
        extra={
            "destination": transition.destination,
            "calls": transition.calls,
            "failures": transition.failures,
            "cooldown": transition.cooldown,
        },
    )
    with rt.autocommit.connect() as connection:
        connection.execute(
            RECORD_TRANSITION,
            {
                "destination": transition.destination,
                "to_state": transition.to_state,
                "calls": transition.calls,
                "failures": transition.failures,
                "cooldown": transition.cooldown,
            },
        )
