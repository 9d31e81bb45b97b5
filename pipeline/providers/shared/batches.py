"""What batched destinations (Mixpanel, GA4, HubSpot) share: a time budget and how a batch settles."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from pipeline.errors import ConfigurationError, PipelineError, RetryableError
from pipeline.providers.base import Outcome

# a flush must end well inside the task's soft time limit: what is not sent by then waits a moment
SEND_BUDGET_SECONDS = 30.0

RequestT = TypeVar("RequestT")
AnswersT = TypeVar("AnswersT")


def budget_spent(started: float, budget: float) -> RetryableError | None:
    """The error for items left unsent once a batch has used its time (`time.monotonic()` based)."""
    if time.monotonic() - started <= budget:
        return None
    return RetryableError(
        "the batch ran out of time; the rest goes in the next flush",
        retry_after=0.0,
        reason="batch_time_budget",
    )


def send_until_stopped(
    requests: Iterable[RequestT],
    send: Callable[[RequestT], tuple[AnswersT, PipelineError | None]],
    unsent: Callable[[RequestT, PipelineError], AnswersT],
) -> Iterator[tuple[RequestT, AnswersT]]:
    """Each request of a batch with its answers. Requests are sent while the time budget lasts and
    until one answers with an error that concerns them all (a rate limit, refused credentials):
    from then on the rest are not sent and answer with that error (`unsent`)."""
    started = time.monotonic()
    stop: PipelineError | None = None
    for request in requests:
        stop = stop or budget_spent(started, SEND_BUDGET_SECONDS)
        if stop is None:
            answers, stop = send(request)
        else:
            answers = unsent(request, stop)
        yield request, answers


def settle_batch(results: dict[int, Outcome]) -> dict[int, Outcome]:
    """Per-item results, unless every item failed with one and the same error from the
    destination itself (down, rate limited, credentials refused): that is raised for the whole
    batch, so the circuit breaker and the shared rate-limit pause see it."""
    errors = {id(value): value for value in results.values()}
    only = next(iter(errors.values()), None)
    if len(errors) == 1 and isinstance(only, RetryableError | ConfigurationError):
        raise only
    return results
