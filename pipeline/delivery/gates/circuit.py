"""Per-destination circuit breaker and operator pause, shared through Redis.

closed: deliveries go out. After `failure_threshold` consecutive unavailable answers the circuit
opens: deliveries are *held* (kept, not attempted, not burning attempts). Once `cooldown` has
passed, one probe delivery is let through; its success closes the circuit and releases everything
held, its failure keeps it open for another cooldown. A paused destination holds likewise until
an operator resumes it.
"""

from __future__ import annotations

import redis

from pipeline import keys
from pipeline.config.model import DestinationConfig

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


# One round trip for the question every delivery asks. KEYS: operator pause, circuit, probe.
# ARGV: cooldown seconds. Returns the verdict; time is Redis's own clock, as in RECORD_FAILURE.
GATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'paused' end
local state = redis.call('HMGET', KEYS[2], 'state', 'opened_at')
if state[1] ~= 'open' then return 'closed' end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if now < tonumber(state[2] or '0') + tonumber(ARGV[1]) then return 'open' end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', math.ceil(tonumber(ARGV[1]) * 1000)) then
  return 'probe'
end
return 'open'
"""

# KEYS: circuit, probe. Returns 1 when this success closed an open circuit; writes only then,
# or when failures had been counted, so the common case is a single read.
SUCCESS = """
local state = redis.call('HMGET', KEYS[1], 'state', 'failures')
if state[1] == 'open' or (tonumber(state[2] or '0') > 0) then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
  redis.call('DEL', KEYS[2])
  if state[1] == 'open' then return 1 end
end
return 0
"""


def gate(client: redis.Redis, destination: DestinationConfig) -> str:
    """closed (go), probe (go: you are the probe), open or paused (hold)."""
    name = destination.name
    verdict = client.eval(
        GATE,
        3,
        keys.operator_pause(name),
        keys.circuit(name),
        keys.circuit_probe(name),
        destination.circuit_cooldown,
    )
    return verdict.decode() if isinstance(verdict, bytes) else str(verdict)


def record_success(client: redis.Redis, destination: str) -> bool:
    """Resets the failure count; True when this success closed an open circuit."""
    return bool(client.eval(SUCCESS, 2, keys.circuit(destination), keys.circuit_probe(destination)))


def record_failure(client: redis.Redis, destination: DestinationConfig) -> bool:
    """Counts an unavailable answer; True when this failure opened the circuit."""
    opened = client.eval(
        RECORD_FAILURE, 1, keys.circuit(destination.name), destination.circuit_threshold
    )
    return bool(opened)


def state(client: redis.Redis, destination: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = client.hgetall(keys.circuit(destination))  # type: ignore[assignment]
    found = {k.decode(): v.decode() for k, v in raw.items()}
    found.setdefault("state", CLOSED)
    found["paused"] = "yes" if client.exists(keys.operator_pause(destination)) else "no"
    return found


def set_paused(client: redis.Redis, destination: str, paused: bool) -> None:
    if paused:
        client.set(keys.operator_pause(destination), "1")
    else:
        client.delete(keys.operator_pause(destination))
