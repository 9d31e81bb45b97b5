"""Per-destination circuit breaker and operator pause, shared by every worker through Redis.

The breaker opens on a failure *rate*, not a streak (resilience4j's count-based-over-time window,
Convoy's breaker): over a sliding window of `window` seconds (ten buckets), once at least
`minimum_calls` calls were made, at least `failure_threshold` of them failed and failures are at
least `failure_rate` of them. A blip of a few errors among many successes never opens it.

open: deliveries are *held* (kept, not attempted, not burning attempts). After `cooldown` the
circuit is half-open: up to `probes` deliveries go through; the first success closes it and
releases everything held; a failure re-opens it with the cooldown doubled (up to
`max_cooldown`), so the wait grows only while probes keep failing. Closing resets the cooldown.
A 429 is not a failure here: it pauses the destination for its Retry-After (`ratelimit`).

Every change of state is returned to the caller as a `Transition`, which `guard` writes as a row.
Time is Redis's own clock, the same for every worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from pipeline import keys
from pipeline.config.model import CircuitPolicy, DestinationConfig

CLOSED, OPEN, HALF_OPEN, PROBE, PAUSED = "closed", "open", "half_open", "probe", "paused"
READY = "ready"  # open past its cooldown, or half-open with probe tokens left: a probe may go
BUCKETS = 10

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: circuit, window, probes. ARGV: failed (0/1), bucket seconds, rate, minimum calls,
# minimum failures, cooldown, max cooldown.
# Returns {transition or '', calls, failures in the window, cooldown} (the cooldown as a string:
# Redis truncates Lua numbers to integers).
RECORD = (
    _NOW
    + """
local bucket = tonumber(ARGV[2])
local b = math.floor(now / bucket)
redis.call('HINCRBY', KEYS[2], 'c' .. b, 1)
if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[2], 'f' .. b, 1) end
for i = b - 30, b - 10 do redis.call('HDEL', KEYS[2], 'c' .. i, 'f' .. i) end
redis.call('PEXPIRE', KEYS[2], math.ceil(bucket * 20000))
local calls, failures = 0, 0
for i = b - 9, b do
  calls = calls + tonumber(redis.call('HGET', KEYS[2], 'c' .. i) or '0')
  failures = failures + tonumber(redis.call('HGET', KEYS[2], 'f' .. i) or '0')
end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local cooldown = tonumber(redis.call('HGET', KEYS[1], 'cooldown') or ARGV[6])
if ARGV[1] == '0' then
  if state == 'half_open' then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'cooldown', ARGV[6])
    redis.call('HDEL', KEYS[1], 'since', 'opened_at')
    redis.call('DEL', KEYS[3])
    return {'closed', calls, failures, ARGV[6]}
  end
  return {'', calls, failures, tostring(cooldown)}
end
if state == 'half_open' then
  cooldown = math.min(cooldown * 2, tonumber(ARGV[7]))
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now), 'cooldown', tostring(cooldown))
  redis.call('DEL', KEYS[3])
  return {'reopened', calls, failures, tostring(cooldown)}
end
if state == 'closed' and calls >= tonumber(ARGV[4]) and failures >= tonumber(ARGV[5])
   and failures >= tonumber(ARGV[3]) * calls then
  cooldown = tonumber(ARGV[6])
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now), 'since', tostring(now),
             'cooldown', tostring(cooldown))
  return {'opened', calls, failures, tostring(cooldown)}
end
return {'', calls, failures, tostring(cooldown)}
"""
)

# The question every delivery asks. KEYS: operator pause, circuit, probes. ARGV: probes allowed.
# Returns {verdict, transition or ''}: closed (go), probe (go: you are a probe), open or paused.
GATE = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'paused', ''} end
local s = redis.call('HMGET', KEYS[2], 'state', 'opened_at', 'cooldown')
local state = s[1] or 'closed'
if state == 'closed' then return {'closed', ''} end
local transition = ''
if state == 'open' then
  if now < tonumber(s[2] or '0') + tonumber(s[3] or '0') then return {'open', ''} end
  redis.call('HSET', KEYS[2], 'state', 'half_open')
  redis.call('DEL', KEYS[3])
  transition = 'half_open'
end
local given = redis.call('INCR', KEYS[3])
-- probe tokens lapse, so probes that never report back cannot keep the circuit half-open forever
if given == 1 then redis.call('PEXPIRE', KEYS[3], math.ceil(math.max(tonumber(s[3] or '1'), 1) * 1000)) end
if given <= tonumber(ARGV[1]) then return {'probe', transition} end
return {'open', transition}
"""
)

# Read-only, for the prober and the status command. KEYS: pause, circuit, probes.
PEEK = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'paused', '0', '0'} end
local s = redis.call('HMGET', KEYS[2], 'state', 'opened_at', 'cooldown', 'since')
local state = s[1] or 'closed'
local open_for = 0
if s[4] then open_for = now - tonumber(s[4]) end
if state == 'open' and now >= tonumber(s[2] or '0') + tonumber(s[3] or '0') then state = 'ready' end
if state == 'half_open' and tonumber(redis.call('GET', KEYS[3]) or '0') < 1 then state = 'ready' end
return {state, tostring(open_for), tostring(s[3] or '0')}
"""
)


@dataclass(frozen=True)
class Transition:
    destination: str
    to_state: str  # opened | reopened | half_open | closed
    calls: int = 0
    failures: int = 0
    cooldown: float = 0.0


@dataclass(frozen=True)
class Gate:
    verdict: str  # closed | probe | open | paused
    transition: Transition | None = None

    @property
    def passes(self) -> bool:
        return self.verdict in (CLOSED, PROBE)


@dataclass(frozen=True)
class Status:
    state: str  # closed | open | half_open | ready (a probe may go) | paused
    open_for: float  # seconds since this outage began (0 when closed)
    cooldown: float


def gate(client: redis.Redis, destination: DestinationConfig) -> Gate:
    name = destination.name
    verdict, transition = client.eval(GATE, 3, *_keys(name), destination.circuit.probes)
    to_state = _text(transition)
    change = Transition(name, to_state) if to_state else None
    return Gate(_text(verdict), change)


def record_success(client: redis.Redis, destination: DestinationConfig) -> Transition | None:
    """Counts a call that worked; the transition when it closed a half-open circuit."""
    return _record(client, destination, failed=False)


def record_failure(client: redis.Redis, destination: DestinationConfig) -> Transition | None:
    """Counts an unavailable answer; the transition when it opened or re-opened the circuit."""
    return _record(client, destination, failed=True)


def _record(
    client: redis.Redis, destination: DestinationConfig, *, failed: bool
) -> Transition | None:
    policy: CircuitPolicy = destination.circuit
    name = destination.name
    found = client.eval(
        RECORD,
        3,
        keys.circuit(name),
        keys.circuit_window(name),
        keys.circuit_probe(name),
        "1" if failed else "0",
        policy.window / BUCKETS,
        policy.failure_rate,
        policy.minimum_calls,
        policy.failure_threshold,
        policy.cooldown,
        policy.max_cooldown,
    )
    to_state, calls, failures, cooldown = found
    if not _text(to_state):
        return None
    return Transition(name, _text(to_state), int(calls), int(failures), float(_text(cooldown)))


def status(client: redis.Redis, destination: str) -> Status:
    state, open_for, cooldown = client.eval(PEEK, 3, *_keys(destination))
    return Status(_text(state), float(_text(open_for)), float(_text(cooldown)))


def state(client: redis.Redis, destination: str) -> dict[str, str]:
    """The breaker as stored, for operators: state, cooldown, since, paused."""
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


def _keys(destination: str) -> tuple[str, str, str]:
    return (
        keys.operator_pause(destination),
        keys.circuit(destination),
        keys.circuit_probe(destination),
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
