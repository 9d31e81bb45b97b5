"""How fast a source may add events that are stored before they are verified.

PayPal's authenticity is proven only by its postback, in the verify task: every row stored at
the edge costs an OAuth token and a call to PayPal later. Each such source has a token bucket in
Redis (the delivery engine's script, so every receiver process shares it); beyond it the answer
is 429 with `Retry-After`, and PayPal retries the delivery later. Nothing is stored then.

Redis unreachable: the event is admitted (logged). A payment refused for a missing limiter
would be worse than a burst of postbacks, and PostgreSQL, which holds the events, is the limit
that matters.
"""

from __future__ import annotations

import logging
import math

import redis

from pipeline import keys
from pipeline.config.model import SourceConfig
from pipeline.delivery.gates.ratelimit import BUCKET_SCRIPT
from receivers.errors import ApiError

log = logging.getLogger(__name__)


def admit_unverified(client: redis.Redis, source: SourceConfig) -> None:
    """Takes one token of the source's intake bucket, or refuses the request with 429."""
    rate = source.unverified_rate_limit
    if rate is None:
        return
    try:
        wait = float(
            client.eval(
                BUCKET_SCRIPT,
                2,
                keys.intake_bucket(source.name),
                keys.intake_pause(source.name),
                rate,
                float(source.unverified_burst),
            )
        )
    except redis.RedisError:
        log.warning("intake limit unavailable; event admitted", extra={"source": source.name})
        return
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            "Too many events from this source await verification; retry later.",
            retry_after=max(1, math.ceil(wait)),
        )
