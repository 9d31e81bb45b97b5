"""Batched delivery for destinations whose API takes many items per call (Mixpanel, GA4, HubSpot).

Deliveries are still one row each (so each is traced, retried and dead-lettered on its own),
but they are sent by a `flush` task per destination that claims up to the API's batch size at a
time. Planning asks for a flush; at most one lingering flush is queued per destination, and the
flush clears its marker before it claims, so nothing planned meanwhile is left behind.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline import keys
from pipeline.config.model import DestinationConfig
from pipeline.delivery.attempt import context
from pipeline.delivery.claim import Claimed, claim_due, configured_destination, defer
from pipeline.delivery.gates import guard, ratelimit
from pipeline.delivery.gates.holds import dead_letter_destination
from pipeline.delivery.http import Exchange, call_scope
from pipeline.delivery.policy import classify
from pipeline.delivery.record import record_delivered, settle_failure
from pipeline.errors import (
    INFRASTRUCTURE_ERRORS,
    ConfigurationError,
    PermanentError,
    PipelineError,
    Throttled,
)
from pipeline.flow.publish import request_flush
from pipeline.runtime import Runtime

MAX_BATCHES_PER_FLUSH = 25
Results = dict[int, dict[str, Any] | Exception]


def flush(rt: Runtime, destination_name: str) -> int:
    """Sends everything due for the destination, batch by batch; returns how many were sent."""
    rt.redis.delete(keys.flush_marker(destination_name))
    try:
        destination = configured_destination(rt, destination_name)
    except ConfigurationError as exc:
        # the destination itself is gone from the config: every open delivery dead-letters
        return dead_letter_destination(rt, destination_name, exc)
    size = destination.provider.batch_size
    sent = 0
    for _ in range(MAX_BATCHES_PER_FLUSH):
        with rt.engine.begin() as connection:
            claimed = claim_due(connection, destination_name, size)
        if not claimed or guard.hold_if_gated(rt, destination, claimed):
            break
        sent += _send(rt, destination, claimed)
        if len(claimed) < size:
            break
    else:
        request_flush(rt, destination_name, claimed[0].lane)
    return sent


def _send(rt: Runtime, destination: DestinationConfig, claimed: list[Claimed]) -> int:
    started = time.time()
    with call_scope(ratelimit.Throttle(rt.redis, destination)) as scope:
        try:
            results = destination.provider.perform_batch(
                context(rt, destination), [(c.ref, c.event) for c in claimed]
            )
        except INFRASTRUCTURE_ERRORS:
            raise  # our own Redis/PostgreSQL: the flush task is retried; leases expire
        except Exception as exc:
            failure = classify(exc, destination.name)
            if isinstance(failure, Throttled):
                defer(rt, destination, claimed, failure.retry_after or 1.0)
                return 0
            guard.after_failure(rt, destination, failure)
            settle_failure(rt, destination, claimed, failure, started=started, exchange=scope.last)
            return 0
    return _settle_results(rt, destination, claimed, results, started=started, exchange=scope.last)


def _settle_results(
    rt: Runtime,
    destination: DestinationConfig,
    claimed: list[Claimed],
    results: Results,
    *,
    started: float,
    exchange: Exchange | None,
) -> int:
    """Items the destination took are delivered together; each refused item fails on its own
    (without counting against the circuit: the destination answered)."""
    delivered = [(c, r) for c in claimed if isinstance(r := results.get(c.ref.id), dict)]
    if delivered:
        record_delivered(rt, delivered, started=started, exchange=exchange)
    for item in claimed:
        outcome = results.get(item.ref.id)
        if not isinstance(outcome, dict):
            failure = _item_failure(outcome)
            settle_failure(rt, destination, [item], failure, started=started, exchange=exchange)
    if delivered:
        guard.after_success(rt, destination)
    return len(delivered)


def _item_failure(outcome: Exception | None) -> PipelineError:
    if isinstance(outcome, PipelineError):
        return outcome
    return PermanentError("the destination gave no result for this item", reason="missing_result")
