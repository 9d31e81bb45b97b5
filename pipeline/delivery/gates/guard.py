"""The gates as the delivery engine sees them: hold work while the destination is gated, and tell
the gates how each call went."""

from __future__ import annotations

import logging

from sqlalchemy import text

from pipeline.config.model import DestinationConfig
from pipeline.delivery.gates import circuit, ratelimit
from pipeline.delivery.gates.holds import release_held
from pipeline.errors import PipelineError, RetryableError
from pipeline.runtime import Runtime

log = logging.getLogger(__name__)

HOLD = text(
    """
    UPDATE deliveries SET status = 'held', attempts = attempts - 1, lease_until = NULL,
        updated_at = now()
    WHERE id = ANY(:ids) AND status = 'in_flight'
    """
)


def hold_if_gated(rt: Runtime, destination: DestinationConfig, ids: list[int]) -> bool:
    """Holds the claimed deliveries (without spending an attempt) when the destination is paused
    or its circuit is open; False when they may go (the circuit is closed, or this is its probe)."""
    if circuit.gate(rt.redis, destination) in (circuit.CLOSED, circuit.PROBE):
        return False
    with rt.engine.begin() as connection:
        connection.execute(HOLD, {"ids": ids})
    return True


def after_failure(rt: Runtime, destination: DestinationConfig, exc: PipelineError) -> None:
    """A 429 backs every worker off the destination; other unavailability counts to its circuit."""
    if not isinstance(exc, RetryableError):
        return
    if exc.http_status == 429:
        ratelimit.back_off(rt.redis, destination.name, exc.retry_after or 1.0)
    elif circuit.record_failure(rt.redis, destination):
        log.warning("circuit opened", extra={"destination": destination.name})


def after_success(rt: Runtime, destination: DestinationConfig) -> None:
    """A success closes an open circuit and releases what it held."""
    if circuit.record_success(rt.redis, destination.name):
        release_held(rt, destination.name)
