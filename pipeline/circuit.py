"""Per-destination circuit breaker and operator pause, shared through Redis.

closed: deliveries go out. After `failure_threshold` consecutive unavailable answers the circuit
opens: deliveries are *held* (kept, not attempted, not burning attempts). Once `cooldown` has
passed, one probe delivery is let through; its success closes the circuit and releases everything
held, its failure keeps it open for another cooldown. A paused destination holds likewise until
an operator resumes it.
"""

from __future__ import annotations

import redis

from pipeline.config import DestinationConfig

CLOSED, OPEN, PROBE, PAUSED = "closed", "open", "probe", "paused"

RECORD_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[1]) and redis.call('HGET', KEYS[1], 'state') ~= 'open' then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(tonumber(t[1]) + tonumber(t[2]) / 1000000))
  return 1
end
if redis.call('HGET', KEYS[1], 'state') == 'open' then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'opened_at', tostring(tonumber(t[1]) + tonumber(t[2]) / 1000000))
end
return 0
"""


def _key(destination: str) -> str:
    return f"stackwire:circuit:{destination}"


def _pause_key(destination: str) -> str:
    return f"stackwire:paused:{destination}"


def gate(client: redis.Redis, destination: DestinationConfig, now: float) -> str:
    """closed (go), probe (go: you are the probe), open or paused (hold)."""
    if client.exists(_pause_key(destination.name)):
        return PAUSED
    state = client.hmget(_key(destination.name), "state", "opened_at")
    if state[0] != b"open":
        return CLOSED
    opened_at = float(state[1] or 0)
    if now < opened_at + destination.circuit_cooldown:
        return OPEN
    probe_key = f"{_key(destination.name)}:probe"
    if client.set(probe_key, "1", nx=True, px=int(destination.circuit_cooldown * 1000)):
        return PROBE
    return OPEN


def record_success(client: redis.Redis, destination: str) -> bool:
    """Resets the failure count; True when this success closed an open circuit."""
    key = _key(destination)
    was_open = client.hget(key, "state") == b"open"
    pipe = client.pipeline()
    pipe.hset(key, mapping={"state": CLOSED, "failures": 0})
    pipe.delete(f"{key}:probe")
    pipe.execute()
    return was_open


def record_failure(client: redis.Redis, destination: DestinationConfig) -> bool:
    """Counts an unavailable answer; True when this failure opened the circuit."""
    opened = client.eval(RECORD_FAILURE, 1, _key(destination.name), destination.circuit_threshold)
    return bool(opened)


def state(client: redis.Redis, destination: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = client.hgetall(_key(destination))  # type: ignore[assignment]
    found = {k.decode(): v.decode() for k, v in raw.items()}
    found.setdefault("state", CLOSED)
    found["paused"] = "yes" if client.exists(_pause_key(destination)) else "no"
    return found


def set_paused(client: redis.Redis, destination: str, paused: bool) -> None:
    if paused:
        client.set(_pause_key(destination), "1")
    else:
        client.delete(_pause_key(destination))
