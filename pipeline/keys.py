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

# -- task names (stable: messages already queued name them) ---------------------------------------
VERIFY = "stackwire.verify"
FETCH = "stackwire.fetch"
DELIVER = "stackwire.deliver"
FLUSH = "stackwire.flush"
SWEEP = "stackwire.sweep"
PROBE_CIRCUITS = "stackwire.probe_circuits"

# -- Redis keys ------------------------------------------------------------------------------------
PREFIX = "stackwire:"


def circuit(destination: str) -> str:
    """The destination's circuit breaker (a hash: state, failures, opened_at)."""
    return f"{PREFIX}circuit:{destination}"


def circuit_probe(destination: str) -> str:
    """Set while one probe delivery is let through a circuit that may be retried."""
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
