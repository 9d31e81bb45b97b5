"""Running verify or fetch as one decision: the step's outcome, or a retry after N seconds, or a
dead letter. The task only acts on what this returns (Celery's retry with that countdown).

Every exception a step raises is classified (`pipeline.delivery.policy`), so nothing is left
stranded; only our own infrastructure's errors (PostgreSQL, Redis, the broker) escape, for the
task to retry as a whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from pipeline.delivery.deadletter import fail_event
from pipeline.delivery.policy import MAX_COUNTDOWN, classify, decide
from pipeline.errors import INFRASTRUCTURE_ERRORS, FailureClass, PipelineError
from pipeline.flow.fetch import fetch_event
from pipeline.flow.verify import verify_event
from pipeline.metrics.definitions import metrics
from pipeline.runtime import Runtime

STEPS: dict[str, Callable[[Runtime, int], str]] = {"verify": verify_event, "fetch": fetch_event}

# the window runs from receipt, or from the last replay; the lane decides how long it is
WINDOW = text(
    """
    SELECT e.lane, greatest(e.received_at, coalesce(max(s.at), e.received_at)) AS started
    FROM events e LEFT JOIN event_steps s ON s.event_id = e.id AND s.step = 'replay'
    WHERE e.id = :id GROUP BY e.id
    """
)
# the retry is queued: the sweeper must not start a second chain meanwhile
DISPATCHED_UNTIL = text(
    "UPDATE events SET dispatched_at = now() + make_interval(secs => :delay) WHERE id = :id"
)


@dataclass(frozen=True)
class StepOutcome:
    status: str
    retry_in: float | None = None


def run_step(rt: Runtime, step: str, event_id: int, *, attempt: int) -> StepOutcome:
    """`attempt` counts this step's tries for the event (1 for the first)."""
    outcome = StepOutcome("infrastructure_error")  # counted so, then raised for the task's retry
    try:
        outcome = _run(rt, step, event_id, attempt)
        return outcome
    finally:
        metrics().steps.labels(step, outcome.status).inc()


def _run(rt: Runtime, step: str, event_id: int, attempt: int) -> StepOutcome:
    try:
        return StepOutcome(STEPS[step](rt, event_id))
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        return _after_failure(
            rt, step, event_id, classify(exc, f"{step} of event {event_id}"), attempt
        )


def _after_failure(
    rt: Runtime, step: str, event_id: int, failure: PipelineError, attempt: int
) -> StepOutcome:
    with rt.engine.begin() as connection:
        row = connection.execute(WINDOW, {"id": event_id}).first()
        if row is None:
            return StepOutcome("gone")
        started: datetime = row.started
        decision = decide(
            attempt,
            failure,
            elapsed=rt.clock() - started.timestamp(),
            window=rt.config.lanes[row.lane].attempt_window,
            exhausted_class=FailureClass.SOURCE_UNAVAILABLE,
            cap=MAX_COUNTDOWN,
        )
        if decision.retry_in is not None:
            connection.execute(DISPATCHED_UNTIL, {"id": event_id, "delay": decision.retry_in})
            return StepOutcome("retrying", decision.retry_in)
    fail_event(rt, event_id, decision.failure, step)
    return StepOutcome("failed")
