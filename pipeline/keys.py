"""Names shared across processes: the lanes, the task names and every Redis key Stackwire writes.

A message already queued names its task by one of these strings, so they never change; every
Redis key is built here, so two concepts can never share one by accident. This module imports
nothing: every layer (schemas included) may use it.
"""

from __future__ import annotations

import hashlib

# -- lanes: one broker queue each, one worker per lane --------------------------------------------
LANES = ("payments", "enrollments", "analytics")
# periodic housekeeping has its own queue that every worker also consumes
MAINTENANCE = "maintenance"

# kombu's Redis transport keeps one list per priority step and serves 0 first; what the sweeper
# re-publishes goes last, so fresh work always passes an old backlog
PRIORITY_STEPS = (0, 3, 6, 9)
BACKLOG_PRIORITY = 9


def priority_list(lane: str, priority: int) -> str:
    """The Redis list holding a lane's messages of one priority step (kombu's `_q_for_pri`)."""
    return lane if priority == 0 else f"{lane}\x06\x16{priority}"


# -- task names (stable: messages already queued name them) ---------------------------------------
VERIFY = "stackwire.verify"
FETCH = "stackwire.fetch"
DELIVER = "stackwire.deliver"
FLUSH = "stackwire.flush"
SWEEP = "stackwire.sweep"
PROBE_CIRCUITS = "stackwire.probe_circuits"
RUN_REPLAY = "stackwire.run_replay"
RESUME_REPLAYS = "stackwire.resume_replays"

# -- periodic jobs whose last run is recorded (/readyz, `stackwire status`) ------------------------
BEAT_JOB = "beat"  # Beat sent its schedule
SWEEPER_JOB = "sweeper"  # a worker ran the sweep
PROBER_JOB = "prober"  # a worker probed the open circuits
JOBS = (BEAT_JOB, SWEEPER_JOB, PROBER_JOB)

# -- Redis keys ------------------------------------------------------------------------------------
PREFIX = "stackwire:"


def last_run(job: str) -> str:
    """When the periodic job last ran (seconds since the epoch, as text)."""
    return f"{PREFIX}last_run:{job}"


def circuit(destination: str) -> str:
    """The destination's circuit breaker (a hash: state, failures, opened_at)."""
    return f"{PREFIX}circuit:{destination}"


def circuit_window(destination: str) -> str:
    """The breaker's sliding window: calls and failures per bucket (a hash)."""
    return f"{circuit(destination)}:window"


def circuit_probe(destination: str) -> str:
    """How many probes a half-open circuit has let through (expires with the cooldown)."""
    return f"{circuit(destination)}:probe"


def operator_pause(destination: str) -> str:
    """Set while an operator has paused the destination (`stackwire destinations pause`)."""
    return f"{PREFIX}paused:{destination}"


def backoff(destination: str) -> str:
    """Until when every worker waits before calling the destination again (a 429's Retry-After)."""
    return f"{PREFIX}backoff:{destination}"


def token_bucket(destination: str) -> str:
    """The destination's shared rate limit (a hash: tokens, at)."""
    return f"{PREFIX}bucket:{destination}"


def intake_bucket(source: str) -> str:
    """The source's limit on events stored before they are verified (the receiver's 429)."""
    return f"{PREFIX}intake:{source}"


def intake_pause(source: str) -> str:
    """Unused pause key the shared bucket script reads beside the intake bucket."""
    return f"{PREFIX}intake-pause:{source}"


def flush_marker(destination: str) -> str:
    """Set while a lingering flush of a batching destination is queued."""
    return f"{PREFIX}flush:{destination}"


def provider_ids(destination: str, api_base: str | None, kind: str) -> str:
    """A destination's ids by name (tag name -> tag id); another account is another set of ids."""
    account = hashlib.sha256((api_base or "").encode()).hexdigest()[:12]
    return f"{PREFIX}ids:{destination}:{account}:{kind}"


def access_token(provider: str, account: str) -> str:
    """An OAuth access token cached for every worker; `account` is a digest, never a credential."""
    return f"{PREFIX}{provider}:token:{account}"


def admin_bucket(token_name: str) -> str:
    """An admin-API token's own rate limit, shared by every receiver process."""
    return f"{PREFIX}admin:{token_name}"


def admin_pause(token_name: str) -> str:
    """Unused pause key the shared bucket script reads beside the admin bucket."""
    return f"{PREFIX}admin-pause:{token_name}"
