"""Delivering one action: claim it, pass the gates, call the destination, record the attempt.

A claim is a lease on the delivery row (`status = in_flight`, `lease_until`): a second worker,
a broker redelivery or the sweeper's re-publish finds nothing to claim while the lease lives,
and a worker killed mid-call leaves a lease that expires, so the work is picked up again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from pipeline.config.model import DestinationConfig
from pipeline.delivery.claim import claim
from pipeline.delivery.deadletter import dead_letter_delivery
from pipeline.delivery.gates import circuit, ratelimit
from pipeline.delivery.gates.holds import release_held
from pipeline.delivery.http import Exchange, call_scope
from pipeline.delivery.policy import MAX_COUNTDOWN, next_delay, within_window
from pipeline.errors import (
    INFRASTRUCTURE_ERRORS,
    ConfigurationError,
    PipelineError,
    RetryableError,
    classify,
)
from pipeline.flow.publish import publish_delivery
from pipeline.logging import redact
from pipeline.providers.base import DeliveryRef, DestinationContext, DestinationProvider
from pipeline.providers.shared.instants import iso_utc
from pipeline.runtime import Runtime

log = logging.getLogger(__name__)


RELEASE = text(
    """
    UPDATE deliveries SET status = :status, attempts = attempts - 1, lease_until = NULL,
        next_attempt_at = now() + make_interval(secs => :delay), updated_at = now()
    WHERE id = ANY(:ids) AND status = 'in_flight'
    """
)
# one statement: the attempt row and the delivered status land together
DELIVERED = text(
    """
    WITH done AS (
        UPDATE deliveries SET status = 'delivered', delivered_at = now(), lease_until = NULL,
            result = CAST(:result AS jsonb), last_error = NULL, updated_at = now()
        WHERE id = :delivery_id AND status = 'in_flight'
    )
    INSERT INTO attempts (delivery_id, number, started_at, duration_ms, outcome, http_status,
                          error_class, error, request, response_excerpt, worker)
    VALUES (:delivery_id, :number, :started_at, :duration_ms, :outcome, :http_status,
            :error_class, :error, :request, :response_excerpt, :worker)
    """
)
RETRYING = text(
    """
    UPDATE deliveries SET status = 'retrying', lease_until = NULL, last_error = :error,
        next_attempt_at = now() + make_interval(secs => :delay), updated_at = now(),
        dispatched_at = CASE WHEN :published THEN now() ELSE dispatched_at END
    WHERE id = :id AND status = 'in_flight'
    """
)
INSERT_ATTEMPT = text(
    """
    INSERT INTO attempts (delivery_id, number, started_at, duration_ms, outcome, http_status,
                          error_class, error, request, response_excerpt, worker)
    VALUES (:delivery_id, :number, :started_at, :duration_ms, :outcome, :http_status,
            :error_class, :error, :request, :response_excerpt, :worker)
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
        outcome = "retry" if isinstance(exc, RetryableError) else "failed"
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


def destination_of(rt: Runtime, name: str) -> tuple[DestinationConfig, DestinationProvider]:
    destination = rt.config.destinations.get(name)
    if destination is None:
        raise ConfigurationError(
            f"destination {name!r} is no longer in the config", reason="unknown_destination"
        )
    return destination, destination.provider


def attempt(rt: Runtime, delivery_id: int, claimant: str | None = None) -> str:
    """One try of one delivery. Raises RetryableError or PermanentError after recording it."""
    with rt.autocommit.connect() as connection:
        claimed = claim(connection, delivery_id, claimant)
    if claimed is None:
        return "not_claimable"
    destination, provider = destination_of(rt, claimed.destination)
    held = hold_if_gated(rt, destination, [claimed.ref.id])
    if held:
        return held
    ctx = context(rt, destination)
    started = time.time()
    with call_scope(ratelimit.Throttle(rt.redis, destination)) as scope:
        try:
            result = provider.perform(ctx, claimed.ref, claimed.event)
        except INFRASTRUCTURE_ERRORS:
            raise  # our own Redis/PostgreSQL: the task retries and takes its lease back
        except Exception as exc:
            failure = as_failure(exc, destination)
            if isinstance(failure, ratelimit.Throttled):
                defer(rt, destination, [(claimed.ref.id, claimed.lane)], failure.retry_after or 1.0)
                return "deferred"
            record_failure(
                rt, destination, claimed.ref, started=started, exc=failure, exchange=scope.last
            )
            raise failure from exc
    record_success(
        rt, destination, claimed.ref, started=started, result=result, exchange=scope.last
    )
    return "delivered"


def as_failure(exc: Exception, destination: DestinationConfig) -> PipelineError:
    """What an exception out of a destination means (see `pipeline.errors.classify`)."""
    return classify(exc, destination.name)


def context(rt: Runtime, destination: DestinationConfig) -> DestinationContext:
    return DestinationContext(
        destination=destination, config=rt.config, http=rt.http, redis=rt.redis, now=rt.clock()
    )


def hold_if_gated(rt: Runtime, destination: DestinationConfig, ids: list[int]) -> str | None:
    """Holds the deliveries when the destination is paused or its circuit is open."""
    gate = circuit.gate(rt.redis, destination)
    if gate in (circuit.CLOSED, circuit.PROBE):
        return None
    with rt.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE deliveries SET status = 'held', attempts = attempts - 1, lease_until = NULL,"
                " updated_at = now() WHERE id = ANY(:ids) AND status = 'in_flight'"
            ),
            {"ids": ids},
        )
    return "held"


def defer(
    rt: Runtime, destination: DestinationConfig, items: list[tuple[int, str]], wait: float
) -> None:
    """Rate limited: back to pending without spending an attempt, published again after the wait."""
    with rt.engine.begin() as connection:
        connection.execute(
            RELEASE, {"ids": [i for i, _ in items], "status": "pending", "delay": wait}
        )
    if wait <= MAX_COUNTDOWN:  # a longer wait (a daily quota) is left to the sweeper
        publish_delivery(rt, items[0][0], items[0][1], destination.name, countdown=wait)


def record_success(
    rt: Runtime,
    destination: DestinationConfig,
    ref: DeliveryRef,
    *,
    started: float,
    result: dict[str, Any],
    exchange: Exchange | None,
) -> None:
    record = AttemptRecord.of(started, "delivered", exchange)
    row = {**record.row(ref.id, ref.attempt), "result": json.dumps(result, default=str)}
    with rt.autocommit.connect() as connection:
        connection.execute(DELIVERED, row)
    if circuit.record_success(rt.redis, destination.name):
        release_held(rt, destination.name)


def record_failure(
    rt: Runtime,
    destination: DestinationConfig,
    ref: DeliveryRef,
    *,
    started: float,
    exc: PipelineError,
    exchange: Exchange | None,
) -> None:
    record = AttemptRecord.failure(started, exc, exchange)
    with rt.engine.begin() as connection:
        connection.execute(INSERT_ATTEMPT, record.row(ref.id, ref.attempt))
    note_failure(rt, destination, exc)


def note_failure(rt: Runtime, destination: DestinationConfig, exc: PipelineError) -> None:
    """A 429 pauses the destination for every worker; other unavailability counts to its circuit."""
    if not isinstance(exc, RetryableError):
        return
    if exc.http_status == 429:
        ratelimit.back_off(rt.redis, destination.name, exc.retry_after or 1.0)
    elif circuit.record_failure(rt.redis, destination):
        log.warning("circuit opened", extra={"destination": destination.name})


def retry_later(rt: Runtime, delivery_id: int, exc: RetryableError) -> str:
    """Schedules the next try, or dead-letters the delivery once the lane's window is spent."""
    with rt.engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT attempts, lane, destination, window_started_at FROM deliveries WHERE id = :id"
            ),
            {"id": delivery_id},
        ).first()
    if row is None:
        return "gone"
    attempts, lane, destination_name = int(row.attempts), str(row.lane), str(row.destination)
    window_started_at: datetime = row.window_started_at
    delay = next_delay(attempts, exc.retry_after)
    elapsed = rt.clock() - window_started_at.timestamp()
    if not within_window(elapsed, delay, rt.config.lanes[lane].attempt_window):
        exc.reason = "attempt_window_exhausted"
        dead_letter_delivery(rt, delivery_id, exc)
        return "dead"
    publishable = delay <= MAX_COUNTDOWN
    with rt.engine.begin() as connection:
        connection.execute(
            RETRYING,
            {
                "id": delivery_id,
                "delay": delay,
                "error": redact(exc.message)[:500],
                "published": publishable,
            },
        )
    if publishable:
        publish_delivery(rt, delivery_id, lane, destination_name, countdown=delay)
    return "retrying"
