"""The one retry policy: what an exception means, whether it is tried again, and after how long.

`classify` turns any exception into a pipeline error; `decide` is the one decision function every
step and every delivery acts on: retry after N seconds (exponential backoff with full jitter,
capped, `Retry-After` honoured) while the attempt window lasts, or dead-letter with the failure.
Nothing else computes a delay or checks a window, and no caller mutates the error it was given.

Waits stay below the broker's visibility timeout (see `tasks.celery_app`): a wait longer than
`MAX_COUNTDOWN` is parked in the database (`next_attempt_at`) and published by the sweeper,
never held by a worker as a long countdown.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import requests
from celery.exceptions import SoftTimeLimitExceeded

from pipeline.errors import (
    DataRefusedError,
    FailureClass,
    PermanentError,
    PipelineError,
    RetryableError,
    refused_by_database,
)

BASE_DELAY = 1.0
MAX_DELAY = 300.0
MAX_COUNTDOWN = 300.0
MAX_RETRY_AFTER = 3600.0
EXHAUSTED = "attempt_window_exhausted"
# the request may have reached the destination and done its work: no answer came back
UNKNOWN_OUTCOME = frozenset({"timeout", "connection_error", "time_limit", "transport_error"})
# how long past its own timeout a destination may still be finishing a call we gave up on
UNKNOWN_OUTCOME_MARGIN = 1.0
Random = Callable[[], float]


@dataclass(frozen=True)
class Decision:
    """Try again after `retry_in` seconds, or (None) dead-letter with `failure`."""

    failure: PipelineError
    retry_in: float | None = None

    @property
    def retries(self) -> bool:
        return self.retry_in is not None


def classify(exc: Exception, subject: str) -> PipelineError:
    """What an exception nobody raised on purpose means (infrastructure errors excepted: callers
    re-raise those so the task is retried as a whole)."""
    if isinstance(exc, PipelineError):
        return exc
    if refused_by_database(exc):  # an engine without `pipeline.log.db`'s hook
        return DataRefusedError.of(exc)
    if isinstance(exc, SoftTimeLimitExceeded):
        return RetryableError(
            f"{subject} did not answer within the task's time limit", reason="time_limit"
        )
    if isinstance(exc, requests.RequestException):
        # a truncated or undecodable answer: transport trouble, not a verdict on the request
        return RetryableError(f"{subject}: {type(exc).__name__}", reason="transport_error")
    return PermanentError(
        f"unexpected {type(exc).__name__} in {subject}",
        reason="internal_error",
        failure_class=FailureClass.INTERNAL,
    )


def decide(
    attempt: int,
    failure: PipelineError,
    *,
    elapsed: float,
    window: float,
    exhausted_class: str | None = None,
    delay: float | None = None,
    cap: float | None = None,
    rand: Random = random.random,
) -> Decision:
    """Retry or dead-letter. `elapsed` counts from the start of the attempt window; `delay` lets
    a batch share one wait (see `wait_for`); `cap` bounds it (a Celery countdown);
    `exhausted_class` names who must act once the window is spent (the source, for verify and
    fetch)."""
    if not isinstance(failure, RetryableError):
        return Decision(failure)
    wait = next_delay(attempt, failure.retry_after, rand=rand) if delay is None else delay
    if cap is not None:
        wait = min(wait, cap)
    if within_window(elapsed, wait, window):
        return Decision(failure, retry_in=wait)
    return Decision(_exhausted(failure, exhausted_class))


def outcome_unknown(failure: PipelineError) -> bool:
    """True when the call may have taken effect although it failed (it timed out, say)."""
    return isinstance(failure, RetryableError) and failure.reason in UNKNOWN_OUTCOME


def wait_for(attempt: int, failure: PipelineError, *, rand: Random = random.random) -> float | None:
    """How long to wait before the next try; None when trying again cannot help."""
    if not isinstance(failure, RetryableError):
        return None
    return next_delay(attempt, failure.retry_after, rand=rand)


def _exhausted(failure: RetryableError, failure_class: str | None) -> RetryableError:
    return RetryableError(
        failure.message,
        retry_after=failure.retry_after,
        reason=EXHAUSTED,
        http_status=failure.http_status,
        failure_class=failure_class or failure.failure_class,
    )


def backoff(
    attempt: int,
    *,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    rand: Random = random.random,
) -> float:
    """Full jitter (AWS architecture blog, 'Exponential Backoff And Jitter'): uniform in
    [0, min(cap, base*2^n)]. Spreads a herd of retries after an outage instead of synchronising them.
    """
    exponent = min(max(attempt - 1, 0), 30)
    ceiling = min(cap, base * (2**exponent))
    return ceiling * rand()


def next_delay(attempt: int, retry_after: float | None, *, rand: Random = random.random) -> float:
    """`Retry-After` from the server wins (clamped to an hour); otherwise full-jitter backoff.

    A small jitter is added to Retry-After too, so every worker does not return at the same instant.
    """
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, MAX_RETRY_AFTER) + rand()
    return max(backoff(attempt, rand=rand), 0.05)


def within_window(elapsed: float, delay: float, window: float) -> bool:
    """True while the next try would still start inside the lane's attempt window."""
    return elapsed + delay <= window
