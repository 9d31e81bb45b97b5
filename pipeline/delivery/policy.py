"""The one retry policy: what is retried, and how long to wait (exponential, full jitter, capped).

Waits stay below the broker's visibility timeout (see `pipeline.celery_app`): a wait longer than
`MAX_COUNTDOWN` is parked in the database (`next_attempt_at`) and published by the sweeper,
never held by a worker as a long countdown.
"""

from __future__ import annotations

import random
from collections.abc import Callable

BASE_DELAY = 1.0
MAX_DELAY = 300.0
MAX_COUNTDOWN = 300.0
MAX_RETRY_AFTER = 3600.0


def backoff(
    attempt: int,
    *,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    rand: Callable[[], float] = random.random,
) -> float:
    """Full jitter (AWS architecture blog, 'Exponential Backoff And Jitter'): uniform in [0, min(cap, base*2^n)].

    Spreads a herd of retries after an outage instead of synchronising them.
    """
    exponent = min(max(attempt - 1, 0), 30)
    ceiling = min(cap, base * (2**exponent))
    return ceiling * rand()


def next_delay(
    attempt: int, retry_after: float | None, *, rand: Callable[[], float] = random.random
) -> float:
    """`Retry-After` from the server wins (clamped to an hour); otherwise full-jitter backoff.

    A small jitter is added to Retry-After too, so every worker does not return at the same instant.
    """
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, MAX_RETRY_AFTER) + rand()
    return max(backoff(attempt, rand=rand), 0.05)


def within_window(elapsed: float, delay: float, window: float) -> bool:
    """True while the next try would still start inside the lane's attempt window."""
    return elapsed + delay <= window
