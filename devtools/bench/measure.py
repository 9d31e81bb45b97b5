"""What the benchmark reads off the running system: CPU seconds and peak memory per component,
Redis commands, storage per event, and latencies from the event log itself."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psutil
import redis
from sqlalchemy import Engine, text

from devtools.bench.system import SystemUnderTest

# receipt -> the payments lane has verified, fetched and planned the event
PLANNED_LATENCY = """
SELECT percentile_cont(:share) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - e.received_at))
FROM events e JOIN event_steps s ON s.event_id = e.id AND s.step = 'plan'
WHERE e.source = :source AND e.received_at >= :since
"""
# receipt -> the first try of each action started (the "start of delivery")
FIRST_ATTEMPT_LATENCY = """
SELECT d.lane, percentile_cont(:share) WITHIN GROUP (ORDER BY extract(epoch FROM a.started_at - e.received_at))
FROM events e JOIN deliveries d ON d.event_id = e.id
JOIN attempts a ON a.delivery_id = d.id AND a.number = 1
WHERE e.source = :source AND e.received_at >= :since
GROUP BY d.lane
"""
# receipt -> the action is delivered
DELIVERED_LATENCY = """
SELECT d.lane, percentile_cont(:share) WITHIN GROUP (ORDER BY extract(epoch FROM d.delivered_at - e.received_at))
FROM events e JOIN deliveries d ON d.event_id = e.id
WHERE e.source = :source AND e.received_at >= :since AND d.status = 'delivered'
GROUP BY d.lane
"""
SPAN = """
SELECT extract(epoch FROM max(d.delivered_at) - min(e.received_at))
FROM events e JOIN deliveries d ON d.event_id = e.id
WHERE e.source = :source AND e.received_at >= :since
"""
STORAGE = """
SELECT (SELECT count(*) FROM events) AS events,
       pg_total_relation_size('events') AS events_bytes,
       pg_total_relation_size('event_steps') AS steps_bytes,
       pg_total_relation_size('deliveries') + pg_total_relation_size('attempts') AS delivery_bytes
"""


def cpu_seconds(system: SystemUnderTest) -> dict[str, float]:
    """User+system CPU seconds so far, per component (a process and all its children)."""
    found: dict[str, float] = defaultdict(float)
    for component, processes in system.processes().items():
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            found[component] += times.user + times.system
    return dict(found)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: max(after.get(name, 0.0) - before.get(name, 0.0), 0.0) for name in after}


def redis_commands(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


@dataclass
class MemoryWatch:
    """Peak resident memory of the largest single process of each component (a gunicorn worker,
    a Celery pool child...), sampled every half second while running."""

    system: SystemUnderTest
    peaks: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemoryWatch:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            for component, processes in self.system.processes().items():
                for process in processes:
                    try:
                        rss = process.memory_info().rss / 1_048_576
                    except psutil.Error:
                        continue
                    self.peaks[component] = max(self.peaks.get(component, 0.0), rss)
            time.sleep(0.5)


def latency_ms(engine: Engine, sql: str, *, source: str, since: Any, share: float) -> Any:
    with engine.connect() as connection:
        rows = connection.execute(text(sql), {"source": source, "since": since, "share": share})
        found = rows.all()
    if found and len(found[0]) == 2:
        return {
            lane: round(float(str(value)) * 1000, 1) for lane, value in found if value is not None
        }
    value = found[0][0] if found else None
    return round(float(value) * 1000, 1) if value is not None else None


def span_seconds(engine: Engine, *, source: str, since: Any) -> float:
    with engine.connect() as connection:
        value = connection.execute(text(SPAN), {"source": source, "since": since}).scalar()
    return float(value or 0.0)


def storage(engine: Engine) -> dict[str, float]:
    with engine.connect() as connection:
        row = connection.execute(text(STORAGE)).mappings().one()
    events = max(int(row["events"]), 1)
    return {
        "events": events,
        "log_bytes_per_event": round((row["events_bytes"] + row["steps_bytes"]) / events),
        "delivery_bytes_per_event": round(row["delivery_bytes"] / events),
    }
