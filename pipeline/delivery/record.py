"""What a try leaves behind: an `attempts` row per try, then the delivery delivered, retrying
(the policy's wait) or dead-lettered. Single and batched deliveries share every statement here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from pipeline.config.model import DestinationConfig
from pipeline.delivery.claim import Claimed
from pipeline.delivery.deadletter import dead_letter_delivery
from pipeline.delivery.http import Exchange
from pipeline.delivery.policy import (
    MAX_COUNTDOWN,
    UNKNOWN_OUTCOME_MARGIN,
    decide,
    outcome_unknown,
    wait_for,
)
from pipeline.errors import PipelineError, RetryableError
from pipeline.flow.publish import is_batched, publish_delivery
from pipeline.logging import redact
from pipeline.metrics.definitions import metrics
from pipeline.providers.shared.instants import iso_utc
from pipeline.runtime import Runtime
from pipeline.storable import json_text

INSERT_ATTEMPT = text(
    """
    INSERT INTO attempts (delivery_id, number, started_at, duration_ms, outcome, http_status,
                          error_class, error, request, response_excerpt, worker)
    VALUES (:delivery_id, :number, :started_at, :duration_ms, :outcome, :http_status,
            :error_class, :error, :request, :response_excerpt, :worker)
    """
)
# one statement for the common case: the attempt row and the delivered status land together
# each returns, for every delivery it moved to delivered, the seconds since its webhook's receipt
# (PostgreSQL's clock at both ends: stackwire_delivery_latency_seconds)
DELIVERED_ONE = text(
    """
    WITH done AS (
        UPDATE deliveries SET status = 'delivered', delivered_at = now(), lease_until = NULL,
            result = CAST(:result AS jsonb), last_error = NULL, updated_at = now()
        WHERE id = :delivery_id AND status = 'in_flight'
        RETURNING event_id
    ),
    tried AS (
        INSERT INTO attempts (delivery_id, number, started_at, duration_ms, outcome, http_status,
                              error_class, error, request, response_excerpt, worker)
        VALUES (:delivery_id, :number, :started_at, :duration_ms, :outcome, :http_status,
                :error_class, :error, :request, :response_excerpt, :worker)
    )
    SELECT CAST(:delivery_id AS bigint) AS id,
           extract(epoch FROM now() - e.received_at) AS latency
    FROM done JOIN events e ON e.id = done.event_id
    """
)
DELIVERED_MANY = text(
    """
    UPDATE deliveries AS d SET status = 'delivered', delivered_at = now(), lease_until = NULL,
        result = r.result, last_error = NULL, updated_at = now()
    FROM (SELECT unnest(CAST(:ids AS bigint[])) AS id,
                 unnest(CAST(:results AS jsonb[])) AS result) AS r, events e
    WHERE d.id = r.id AND d.status = 'in_flight' AND e.id = d.event_id
    RETURNING d.id, extract(epoch FROM now() - e.received_at) AS latency
    """
)
RETRYING = text(
    """
    UPDATE deliveries SET status = 'retrying', lease_until = NULL, last_error = :error,
        next_attempt_at = now() + make_interval(secs => :delay), updated_at = now(),
        dispatched_at = CASE WHEN :published THEN now() ELSE dispatched_at END
    WHERE id = ANY(:ids) AND status = 'in_flight'
    """
)


@dataclass
class AttemptRecord:
    """What one try looked like, written as an `attempts` row."""

    started_at: float
    duration_ms: float
    outcome: str
    http_status: int | None = None
    error_class: str | None = None
    error: str | None = None
    request: str | None = None
    response_excerpt: str | None = None

    @classmethod
    def of(cls, started: float, outcome: str, exchange: Exchange | None) -> AttemptRecord:
        record = cls(started, (time.time() - started) * 1000, outcome)
        if exchange is not None:
            record.request = exchange.request_line
            record.http_status = exchange.status
            record.response_excerpt = exchange.excerpt or None
        return record

    @classmethod
    def failure(
        cls, started: float, exc: PipelineError, exchange: Exchange | None
    ) -> AttemptRecord:
        # "unknown": sent, but whether it took effect nobody knows; a resend may double it where
        # the destination cannot deduplicate (docs/providers.md names those)
        outcome = "unknown" if outcome_unknown(exc) else "retry"
        outcome = outcome if isinstance(exc, RetryableError) else "failed"
        record = cls.of(started, outcome, exchange)
        record.http_status = exc.http_status or record.http_status
        record.error_class = exc.failure_class
        record.error = redact(exc.message)[:500]
        return record

    def row(self, delivery_id: int, number: int) -> dict[str, Any]:
        return {
            "delivery_id": delivery_id,
            "number": number,
            "started_at": iso_utc(self.started_at),
            "duration_ms": round(self.duration_ms, 3),
            "outcome": self.outcome,
            "http_status": self.http_status,
            "error_class": self.error_class,
            "error": self.error,
            "request": self.request,
            "response_excerpt": self.response_excerpt,
            "worker": worker_name(),
        }


def worker_name() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"


def record_delivered(
    rt: Runtime,
    delivered: list[tuple[Claimed, dict[str, Any]]],
    *,
    started: float,
    exchange: Exchange | None,
) -> None:
    """The attempt rows and the delivered status (with each destination result), in one commit."""
    record = AttemptRecord.of(started, "delivered", exchange)
    if len(delivered) == 1:
        ((item, result),) = delivered
        row = {**record.row(item.ref.id, item.ref.attempt), "result": _json(result)}
        with rt.autocommit.connect() as connection:
            moved = connection.execute(DELIVERED_ONE, row).all()
    else:
        with rt.engine.begin() as connection:
            connection.execute(
                INSERT_ATTEMPT, [record.row(c.ref.id, c.ref.attempt) for c, _ in delivered]
            )
            moved = connection.execute(
                DELIVERED_MANY,
                {
                    "ids": [c.ref.id for c, _ in delivered],
                    "results": [_json(r) for _, r in delivered],
                },
            ).all()
    latencies = {row.id: float(row.latency) for row in moved}
    for item, _result in delivered:
        if item.ref.id in latencies:  # delivered now, not by a worker that took the lease over
            count_delivery(item, "delivered")
            metrics().delivery_latency.labels(item.lane).observe(latencies[item.ref.id])


def count_delivery(item: Claimed, outcome: str) -> None:
    """stackwire_deliveries_total: what one try of one delivery came to."""
    metrics().deliveries.labels(item.destination, item.ref.action, outcome).inc()


def settle_failure(
    rt: Runtime,
    destination: DestinationConfig,
    claimed: list[Claimed],
    failure: PipelineError,
    *,
    started: float,
    exchange: Exchange | None,
) -> str:
    """Records the failed try of each item, then acts on the policy's decision for it: retry
    after the wait (one shared wait for a batch) or dead-letter. Returns `retrying` or `dead`."""
    record = AttemptRecord.failure(started, failure, exchange)
    with rt.engine.begin() as connection:
        connection.execute(INSERT_ATTEMPT, [record.row(c.ref.id, c.ref.attempt) for c in claimed])
    wait = wait_for(max(c.ref.attempt for c in claimed), failure)
    if wait is not None and destination.provider.looks_before_create and outcome_unknown(failure):
        # the create may still be running at the destination: look again only once it must be over
        wait = max(wait, destination.timeout_seconds + UNKNOWN_OUTCOME_MARGIN)
    window = rt.config.lanes[claimed[0].lane].attempt_window
    now = rt.clock()
    retrying = []
    for item in claimed:
        elapsed = now - item.window_started_at.timestamp()
        decision = decide(item.ref.attempt, failure, elapsed=elapsed, window=window, delay=wait)
        if decision.retry_in is not None:
            retrying.append(item)
        else:
            dead_letter_delivery(rt, item.ref.id, decision.failure)
            count_delivery(item, "dead")
    if not retrying or wait is None:
        return "dead"
    for item in retrying:
        count_delivery(item, "retrying")
    _retry(rt, destination, retrying, failure, wait)
    return "retrying"


def _retry(
    rt: Runtime,
    destination: DestinationConfig,
    items: list[Claimed],
    failure: PipelineError,
    wait: float,
) -> None:
    publishable = wait <= MAX_COUNTDOWN  # a longer wait is parked for the sweeper
    with rt.engine.begin() as connection:
        connection.execute(
            RETRYING,
            {
                "ids": [c.ref.id for c in items],
                "delay": wait,
                "error": redact(failure.message)[:500],
                "published": publishable,
            },
        )
    if not publishable:
        return
    # a batching destination's one flush takes them all; a single delivery is its own task
    for item in items[:1] if is_batched(rt.config, destination.name) else items:
        publish_delivery(rt, item.ref.id, item.lane, destination.name, countdown=wait)


def _json(value: Any) -> str:
    return json_text(value)  # a destination's answer may hold U+0000, which jsonb refuses
