"""Batched delivery for destinations whose API takes many items per call (Mixpanel, GA4, HubSpot).

Deliveries are still one row each (so each is traced, retried and dead-lettered on its own),
but they are sent by a `flush` task per destination that claims up to the API's batch size at a
time. Planning asks for a flush; at most one lingering flush is queued per destination, and the
flush clears its marker before it claims, so nothing planned meanwhile is left behind.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import text

from pipeline import keys
from pipeline.delivery.attempt import (
    INSERT_ATTEMPT,
    AttemptRecord,
    as_failure,
    context,
    defer,
    destination_of,
    hold_if_gated,
    note_failure,
)
from pipeline.delivery.claim import Claimed
from pipeline.delivery.deadletter import dead_letter_delivery
from pipeline.delivery.gates import circuit, ratelimit
from pipeline.delivery.gates.holds import release_held
from pipeline.delivery.http import Exchange, call_scope
from pipeline.delivery.policy import MAX_COUNTDOWN, next_delay
from pipeline.errors import INFRASTRUCTURE_ERRORS, PermanentError, PipelineError, RetryableError
from pipeline.flow.publish import request_flush
from pipeline.logging import redact
from pipeline.providers.base import DeliveryRef
from pipeline.runtime import Runtime

MAX_BATCHES_PER_FLUSH = 25

CLAIM_BATCH = text(
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
    UPDATE deliveries d SET status = 'in_flight', attempts = d.attempts + 1,
        lease_until = now() + interval '75 seconds', claimed_by = NULL, updated_at = now()
    FROM due, events e
    WHERE d.id = due.id AND e.id = d.event_id
    RETURNING d.id, d.action, d.destination, d.lane, d.idempotency_key, d.attempts,
              d.window_started_at, e.canonical
    """
)
MARK_DELIVERED = text(
    """
    UPDATE deliveries AS d SET status = 'delivered', delivered_at = now(), lease_until = NULL,
        result = r.result, last_error = NULL, updated_at = now()
    FROM (SELECT unnest(CAST(:ids AS bigint[])) AS id,
                 unnest(CAST(:results AS jsonb[])) AS result) AS r
    WHERE d.id = r.id AND d.status = 'in_flight'
    """
)
MARK_RETRYING = text(
    """
    UPDATE deliveries SET status = 'retrying', lease_until = NULL, last_error = :error,
        next_attempt_at = now() + make_interval(secs => :delay), updated_at = now(),
        dispatched_at = now()
    WHERE id = ANY(:ids) AND status = 'in_flight'
    """
)


def flush(rt: Runtime, destination_name: str) -> int:
    """Sends everything due for the destination, batch by batch; returns how many were sent."""
    rt.redis.delete(keys.flush_marker(destination_name))
    destination, provider = destination_of(rt, destination_name)
    sent = 0
    for _ in range(MAX_BATCHES_PER_FLUSH):
        with rt.engine.begin() as connection:
            rows = connection.execute(
                CLAIM_BATCH, {"destination": destination_name, "limit": provider.batch_size}
            ).all()
        if not rows:
            break
        claimed = [_claimed(row) for row in rows]
        ids = [c.ref.id for c in claimed]
        if hold_if_gated(rt, destination, ids):
            break
        sent += _send(rt, destination_name, claimed)
        if len(rows) < provider.batch_size:
            break
    else:
        request_flush(rt, destination_name, claimed[0].lane)
    return sent


def _claimed(row: Any) -> Claimed:
    ref = DeliveryRef(
        id=row.id,
        action=row.action,
        verb=row.action.split(".", 1)[1],
        idempotency_key=row.idempotency_key,
        attempt=row.attempts,
    )
    return Claimed(ref, row.destination, row.lane, row.window_started_at, row.canonical)


def _send(rt: Runtime, destination_name: str, claimed: list[Claimed]) -> int:
    destination, provider = destination_of(rt, destination_name)
    ctx = context(rt, destination)
    started = time.time()
    with call_scope(ratelimit.Throttle(rt.redis, destination)) as scope:
        try:
            results = provider.perform_batch(ctx, [(c.ref, c.event) for c in claimed])
        except INFRASTRUCTURE_ERRORS:
            raise  # our own Redis/PostgreSQL: the flush task is retried; leases expire
        except Exception as exc:
            failure = as_failure(exc, destination)
            if isinstance(failure, ratelimit.Throttled):
                defer(
                    rt,
                    destination,
                    [(c.ref.id, c.lane) for c in claimed],
                    failure.retry_after or 1.0,
                )
                return 0
            note_failure(rt, destination, failure)
            _fail_all(rt, claimed, failure, started, scope.last)
            return 0
    return _record_results(
        rt, destination_name, claimed, results=results, started=started, exchange=scope.last
    )


def _record_results(
    rt: Runtime,
    destination_name: str,
    claimed: list[Claimed],
    *,
    results: dict[int, dict[str, Any] | Exception],
    started: float,
    exchange: Exchange | None,
) -> int:
    record = AttemptRecord.of(started, "delivered", exchange)
    delivered = [c for c in claimed if isinstance(results.get(c.ref.id), dict)]
    attempts = [record.row(c.ref.id, c.ref.attempt) for c in delivered]
    with rt.engine.begin() as connection:
        if attempts:
            connection.execute(INSERT_ATTEMPT, attempts)
            connection.execute(
                MARK_DELIVERED,
                {
                    "ids": [c.ref.id for c in delivered],
                    "results": [json.dumps(results[c.ref.id], default=str) for c in delivered],
                },
            )
    failures = [c for c in claimed if not isinstance(results.get(c.ref.id), dict)]
    for item in failures:
        error = results.get(item.ref.id)
        exc = (
            error
            if isinstance(error, PipelineError)
            else PermanentError(
                "the destination gave no result for this item", reason="missing_result"
            )
        )
        _fail_all(rt, [item], exc, started, exchange)
    if delivered and circuit.record_success(rt.redis, destination_name):
        release_held(rt, destination_name)
    return len(delivered)


def _fail_all(
    rt: Runtime,
    claimed: list[Claimed],
    exc: PipelineError,
    started: float,
    exchange: Exchange | None,
) -> None:
    record = AttemptRecord.failure(started, exc, exchange)
    with rt.engine.begin() as connection:
        connection.execute(INSERT_ATTEMPT, [record.row(c.ref.id, c.ref.attempt) for c in claimed])
    if not isinstance(exc, RetryableError):
        for item in claimed:
            dead_letter_delivery(rt, item.ref.id, exc)
        return
    _retry_all(rt, claimed, exc)


def _retry_all(rt: Runtime, claimed: list[Claimed], exc: RetryableError) -> None:
    delay = next_delay(max(c.ref.attempt for c in claimed), exc.retry_after)
    window = rt.config.lanes[claimed[0].lane].attempt_window
    now = rt.clock()
    spent = [c for c in claimed if now - c.window_started_at.timestamp() + delay > window]
    keep = [c for c in claimed if c not in spent]
    for item in spent:
        exc.reason = "attempt_window_exhausted"
        dead_letter_delivery(rt, item.ref.id, exc)
    if not keep:
        return
    with rt.engine.begin() as connection:
        connection.execute(
            MARK_RETRYING,
            {"ids": [c.ref.id for c in keep], "delay": delay, "error": redact(exc.message)[:500]},
        )
    if delay <= MAX_COUNTDOWN:
        request_flush(rt, keep[0].destination, keep[0].lane, countdown=delay)
