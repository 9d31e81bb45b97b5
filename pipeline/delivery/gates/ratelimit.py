"""A token bucket per destination, kept in Redis and shared by every worker process.

Celery's own `rate_limit` counts per worker, so four workers would send four times the limit.
Here one Lua script reads Redis's clock, refills, and takes a token atomically; when the
destination said 429 with `Retry-After`, every worker sees the same pause until it ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from pipeline import keys
from pipeline.config.model import DestinationConfig
from pipeline.errors import Throttled
from pipeline.metrics.definitions import metrics

MAX_SLEEP = 1.0  # wait this long in the worker for a token; a longer wait defers the action


# Returns seconds to wait (0 = a token was taken). KEYS: bucket, pause. ARGV: rate, capacity.
BUCKET_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local paused_until = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused_until > now then
  return tostring(paused_until - now)
end
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(wait)
"""

PAUSE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local until_at = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_at > current then
  redis.call('SET', KEYS[1], tostring(until_at), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return tostring(until_at)
"""


def _keys(destination: str) -> tuple[str, str]:
    return keys.token_bucket(destination), keys.backoff(destination)


def take(client: redis.Redis, destination: DestinationConfig) -> float:
    """Takes one token; returns 0.0, or how many seconds until one is free (nothing taken)."""
    bucket, pause = _keys(destination.name)
    if destination.rate_limit is None:
        paused_until = client.get(pause)
        if paused_until is None:
            return 0.0
        rate, capacity = 1e9, 1e9
    else:
        rate = destination.rate_limit
        capacity = float(destination.burst or 1)
    wait = client.eval(BUCKET_SCRIPT, 2, bucket, pause, rate, capacity)
    return float(wait)


@dataclass
class Throttle:
    """Takes one token per request (what the provider counts), sleeping for short waits."""

    client: redis.Redis
    destination: DestinationConfig
    max_sleep: float = MAX_SLEEP

    def __call__(self) -> None:
        while True:
            wait = take(self.client, self.destination)
            if wait <= 0:
                return
            # slept here, or deferred for: either way the delivery waited this long
            metrics().rate_limit_wait.labels(self.destination.name).inc(wait)
            if wait > self.max_sleep:
                raise Throttled(self.destination.name, wait)
            time.sleep(wait)


def back_off(client: redis.Redis, destination: str, seconds: float) -> None:
    """Every worker stops sending to `destination` for `seconds` (a 429's Retry-After)."""
    client.eval(PAUSE_SCRIPT, 1, _keys(destination)[1], max(seconds, 0.001))
