"""What verify and fetch share: the source's context, the stored payload, verdicts and step retries."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from pipeline.delivery.deadletter import fail_event
from pipeline.delivery.policy import MAX_COUNTDOWN, next_delay, within_window
from pipeline.errors import BadPayload, ConfigurationError, PermanentError, RetryableError
from pipeline.log.events import StoredEvent, load_event, move
from pipeline.log.models import EventStatus
from pipeline.providers.base import SourceContext, SourceProvider, Verdict
from pipeline.runtime import Runtime

VERDICT_STATUS = {
    "wait": EventStatus.WAITING,
    "ignore": EventStatus.IGNORED,
    "reject": EventStatus.REJECTED,
}


# the window runs from receipt, or from the last replay
WINDOW_START = text(
    """
    SELECT greatest(e.received_at, coalesce(max(s.at), e.received_at))
    FROM events e LEFT JOIN event_steps s ON s.event_id = e.id AND s.step = 'replay'
    WHERE e.id = :id GROUP BY e.received_at
    """
)


DISPATCHED_UNTIL = text(
    "UPDATE events SET dispatched_at = now() + make_interval(secs => :delay) WHERE id = :id"
)


def source_context(rt: Runtime, event: StoredEvent) -> tuple[SourceContext, SourceProvider]:
    source = rt.config.sources.get(event.source)
    if source is None:
        raise ConfigurationError(
            f"source {event.source!r} is no longer in the config", reason="unknown_source"
        )
    context = SourceContext(source=source, http=rt.http, redis=rt.redis, now=rt.clock())
    return context, source.provider


def parse_stored(provider: SourceProvider, event: StoredEvent) -> Any:
    try:
        return provider.parse(event.body)
    except BadPayload as exc:
        raise PermanentError(exc.message, reason=exc.code, failure_class="contract") from exc


def settling_step(expected: str) -> str:
    """The step that settles an event: `fetch`, or `verify` when a payload needed no fetch."""
    return "verify" if expected == EventStatus.RECEIVED else "fetch"


def retry_step_later(
    rt: Runtime, event_id: int, exc: RetryableError, step: str, attempt: int
) -> float | None:
    """Seconds until verify/fetch is tried again, or None once the lane's window (counted from
    receipt) is spent and the event has been dead-lettered."""
    with rt.engine.connect() as connection:
        event = load_event(connection, event_id)
    if event is None:
        return None
    delay = min(next_delay(attempt, exc.retry_after), MAX_COUNTDOWN)
    with rt.engine.begin() as connection:
        started: datetime = connection.execute(WINDOW_START, {"id": event_id}).scalar_one()
        if within_window(
            rt.clock() - started.timestamp(), delay, rt.config.lanes[event.lane].attempt_window
        ):
            # the retry is queued: the sweeper must not start a second chain meanwhile
            connection.execute(DISPATCHED_UNTIL, {"id": event_id, "delay": delay})
            return delay
    exc.reason = "attempt_window_exhausted"
    exc.failure_class = "source_unavailable"
    fail_event(rt, event_id, exc, step)
    return None


def apply_verdict(
    connection: Connection,
    event_id: int,
    verdict: Verdict,
    step: str,
    started: float,
    *,
    expected: str = EventStatus.RECEIVED,
) -> str:
    status = VERDICT_STATUS[verdict.outcome]
    moved = move(
        connection,
        event_id,
        expected=expected,
        to=status,
        step=step,
        reason=verdict.reason,
        duration_ms=elapsed_ms(started),
    )
    return status if moved else "not_pending"


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def to_json(value: Any) -> str:
    return json.dumps(value, default=str)
