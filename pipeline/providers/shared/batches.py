"""What batched destinations (Mixpanel, GA4, HubSpot) share: a time budget and how a batch settles."""

from __future__ import annotations

import time
from typing import Any

from pipeline.errors import ConfigurationError, RetryableError

# a flush must end well inside the task's soft time limit: what is not sent by then waits a moment
SEND_BUDGET_SECONDS = 30.0


def budget_spent(started: float, budget: float) -> RetryableError | None:
    """The error for items left unsent once a batch has used its time (`time.monotonic()` based)."""
    if time.monotonic() - started <= budget:
        return None
    return RetryableError(
        "the batch ran out of time; the rest goes in the next flush",
        retry_after=0.0,
        reason="batch_time_budget",
    )


def settle_batch(
    results: dict[int, dict[str, Any] | Exception],
) -> dict[int, dict[str, Any] | Exception]:
    """Per-item results, unless every item failed with one and the same error from the
    destination itself (down, rate limited, credentials refused): that is raised for the whole
    batch, so the circuit breaker and the shared rate-limit pause see it."""
    errors = {id(value): value for value in results.values()}
    only = next(iter(errors.values()), None)
    if len(errors) == 1 and isinstance(only, RetryableError | ConfigurationError):
        raise only
    return results
