"""The sandbox's memory: every call it received, every object it holds, every fault it is told to play.

One process holds it (the sandbox runs one gunicorn worker with threads), guarded by a lock.
`effects` count what a real provider would have done (an enrollment created, a member upserted,
an event imported) keyed by what makes them unique, so a test can ask "was anything done twice?".
"""

from __future__ import annotations

import itertools
import random
import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Call:
    seq: int
    at: float
    provider: str
    method: str
    path: str
    status: int
    idempotency_key: str | None = None
    effect: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fault:
    """What a provider should do wrong, until `until` (epoch seconds; 0 = until cleared)."""

    status: int | None = None  # answer this status (500, 503, 429…) instead of serving
    rate: float = 1.0  # fraction of requests the status applies to
    retry_after: float | None = None  # Retry-After seconds with a 429/503
    latency_ms: float = 0.0  # added to every request
    hang_seconds: float = 0.0  # sleep this long before answering (to trip client timeouts)
    rate_limit: float | None = None  # requests per second before the provider's own 429
    # answer the next requests with these statuses, in order (then serve normally): a scripted
    # blip like "eight 500s, then three 429s"; `retry_after` goes with each 429/503
    sequence: list[int] = field(default_factory=list)
    # only requests with this method and/or a path containing this text (a slow create, say:
    # `method="POST", path="/enrollments"`); None matches every request
    method: str | None = None
    path: str | None = None
    until: float = 0.0

    def active(self, now: float) -> bool:
        return self.until == 0.0 or now < self.until

    def applies_to(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path is None or self.path in path
        )


class SandboxState:
    def __init__(self, seed: int | None = None) -> None:
        self.lock = threading.RLock()
        self.calls: list[Call] = []
        self.stores: dict[str, dict[str, Any]] = defaultdict(dict)
        self.faults: dict[str, Fault] = {}
        self.effects: dict[str, Counter[str]] = defaultdict(Counter)
        self.idempotency: dict[tuple[str, str], tuple[int, Any]] = {}
        self._seq = itertools.count(1)
        self._ids = itertools.count(1000)
        self._windows: dict[str, list[float]] = defaultdict(list)
        self.random = random.Random(seed)

    def new_id(self, prefix: str = "", *, numeric: bool = False) -> str | int:
        if numeric:
            return next(self._ids)
        return f"{prefix}_{secrets.token_hex(12)}"

    def record(self, provider: str, method: str, path: str, status: int, **kwargs: Any) -> Call:
        with self.lock:
            call = Call(next(self._seq), time.time(), provider, method, path, status, **kwargs)
            self.calls.append(call)
            return call

    def effect(self, provider: str, kind: str, key: str) -> int:
        """Counts one real-world effect; returns how many times this exact one has happened."""
        with self.lock:
            self.effects[provider][f"{kind}|{key}"] += 1
            return self.effects[provider][f"{kind}|{key}"]

    def store(self, provider: str, collection: str) -> dict[Any, Any]:
        with self.lock:
            return self.stores[provider].setdefault(collection, {})

    def next_scripted_status(self, provider: str) -> int | None:
        """The next status of the provider's scripted fault, consumed; None when none is left."""
        with self.lock:
            fault = self.faults.get(provider)
            if fault is None or not fault.sequence:
                return None
            return fault.sequence.pop(0)

    def over_rate_limit(self, provider: str, per_second: float, now: float) -> bool:
        with self.lock:
            window = [t for t in self._windows[provider] if now - t < 1.0]
            limited = len(window) >= per_second
            if not limited:
                window.append(now)
            self._windows[provider] = window
            return limited

    def summary(self) -> dict[str, Any]:
        with self.lock:
            by_provider: dict[str, Any] = {}
            for provider, counter in self.effects.items():
                kinds: Counter[str] = Counter()
                duplicates: Counter[str] = Counter()
                for composite, count in counter.items():
                    kind = composite.split("|", 1)[0]
                    kinds[kind] += 1
                    if count > 1:
                        duplicates[kind] += count - 1
                by_provider[provider] = {"effects": dict(kinds), "duplicates": dict(duplicates)}
            calls = Counter(f"{c.provider} {c.method} {c.status}" for c in self.calls)
            return {"providers": by_provider, "calls": dict(calls), "total_calls": len(self.calls)}

    def calls_as_dicts(self, provider: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        with self.lock:
            return [
                asdict(c)
                for c in self.calls
                if c.seq > since and (provider is None or c.provider == provider)
            ]

    def reset(self) -> None:
        with self.lock:
            for collection in (
                self.calls,
                self.stores,
                self.faults,
                self.effects,
                self.idempotency,
                self._windows,
            ):
                collection.clear()
