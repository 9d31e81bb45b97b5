"""`stackwire bench`: measures the running system the same way every time, writes a report.

Each part starts the whole system on its own embedded PostgreSQL and Redis (see `system.py`)
and reads its figures from the processes (CPU, memory), Redis (commands) and the event log
itself (latencies). Nothing here asserts a time: it reports, with the targets beside.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import psutil
from sqlalchemy import text

from devtools.bench import ingest, measure, search, traffic
from devtools.bench.invariants import drain
from devtools.bench.loadgen import send_until_accepted
from devtools.bench.system import SystemUnderTest, data_root
from pipeline.keys import LANES

Say = Callable[[str], None]


@dataclass
class Sizes:
    ingest_levels: tuple[int, ...] = (1, 8, 32, 64)
    ingest_requests: int = 6000
    purchases: int = 2000
    scaling_purchases: int = 1000
    flood: int = 50_000
    probe_purchases: int = 300
    probe_rate: float = 20.0
    search_events: int = 1_000_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls((1, 32), 1500, 300, 200, 5000, 100, 20.0, 100_000)


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    ingest: list[ingest.IngestRow] = field(default_factory=list)
    e2e: dict[str, Any] = field(default_factory=dict)
    scaling: list[dict[str, Any]] = field(default_factory=list)
    isolation: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)


def machine() -> dict[str, str]:
    versions = {
        name: metadata.version(name)
        for name in ("celery", "kombu", "redis", "flask", "gunicorn", "sqlalchemy", "psycopg")
    }
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{psutil.cpu_count(logical=True)} cores ({platform.processor() or platform.machine()})",
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "libraries": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def server_versions(system: SystemUnderTest) -> dict[str, str]:
    engine = system.engine()
    with engine.connect() as connection:
        postgres = str(connection.execute(text("SHOW server_version")).scalar())
    engine.dispose()
    info: dict[str, Any] = system.redis().info("server")
    return {"postgresql": postgres, "redis": str(info.get("redis_version"))}


def purchases_run(system: SystemUnderTest, count: int, *, rate: float = 0.0) -> dict[str, Any]:
    """Sends `count` real purchases and waits until every action is delivered; reads the cost."""
    engine, client = system.engine(), system.redis()
    events = traffic.purchase_events(system.sandbox_url, count)
    since = datetime.now(UTC)
    cpu_before, commands_before = measure.cpu_seconds(system), measure.redis_commands(client)
    with measure.MemoryWatch(system) as memory:
        send_until_accepted(
            system.receiver_url,
            lambda: [traffic.signed_stripe(e) for e in events],
            concurrency=16,
            rate=rate,
        )
        _, left = drain(engine, timeout=900)
    cpu = measure.cpu_delta(cpu_before, measure.cpu_seconds(system))
    span = measure.span_seconds(engine, source="stripe", since=since)
    ours = {k: v for k, v in cpu.items() if k not in ("sandbox",)}
    result = {
        "purchases": count,
        "unfinished": left,
        "span_s": round(span, 1),
        "per_second": round(count / span, 1) if span else 0.0,
        "cpu_ms_per_purchase": {k: round(v / count * 1000, 2) for k, v in sorted(cpu.items())},
        "stackwire_cpu_ms": round(sum(ours.values()) / count * 1000, 1),
        "sandbox_cpu_ms": round(cpu.get("sandbox", 0.0) / count * 1000, 1),
        "redis_commands_per_purchase": round(
            (measure.redis_commands(client) - commands_before) / count, 1
        ),
        "peak_rss_mb": {k: round(v) for k, v in sorted(memory.peaks.items())},
        "latency_ms": {
            f"p{int(share * 100)}": {
                "payments (receipt to planned)": measure.latency_ms(
                    engine, measure.PLANNED_LATENCY, source="stripe", since=since, share=share
                ),
                "start of delivery by lane": measure.latency_ms(
                    engine, measure.FIRST_ATTEMPT_LATENCY, source="stripe", since=since, share=share
                ),
                "delivered by lane": measure.latency_ms(
                    engine, measure.DELIVERED_LATENCY, source="stripe", since=since, share=share
                ),
            }
            for share in (0.5, 0.99)
        },
        **measure.storage(engine),
    }
    engine.dispose()
    return result


def isolation(system: SystemUnderTest, sizes: Sizes, say: Say) -> dict[str, Any]:
    """Payments-lane latency with the analytics lane idle, then with a flood queued in it: the
    flood is accepted first, then purchases arrive at a steady rate while the analytics lane
    works through its backlog (at its lower CPU priority)."""
    engine = system.engine()
    idle = probe(system, sizes)
    say(f"  idle payments p99 {idle['p99']} ms; queueing {sizes.flood:,} analytics events")
    flood = traffic.analytics_requests(sizes.flood)
    send_until_accepted(system.receiver_url, lambda: flood, concurrency=16)
    busy = probe(system, sizes)
    with engine.connect() as connection:
        queued = connection.execute(
            text("SELECT count(*) FROM events WHERE source = 'events' AND status <> 'processed'")
        ).scalar()
    drain(engine, timeout=1800)
    engine.dispose()
    return {
        "idle": idle,
        "flooded": busy,
        "analytics_unprocessed_when_probe_ended": queued,
        "flood": sizes.flood,
    }


def probe(system: SystemUnderTest, sizes: Sizes) -> dict[str, Any]:
    engine = system.engine()
    events = traffic.purchase_events(system.sandbox_url, sizes.probe_purchases)
    since = datetime.now(UTC)
    send_until_accepted(
        system.receiver_url,
        lambda: [traffic.signed_stripe(e) for e in events],
        concurrency=4,
        rate=sizes.probe_rate,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            planned = connection.execute(
                text(
                    "SELECT count(*) FROM events e JOIN event_steps s ON s.event_id = e.id "
                    "AND s.step = 'plan' WHERE e.source = 'stripe' AND e.received_at >= :since"
                ),
                {"since": since},
            ).scalar()
        if planned == sizes.probe_purchases:
            break
        time.sleep(0.5)
    time.sleep(2)  # the first tries of the planned deliveries start
    found: dict[str, Any] = {}
    for share in (0.5, 0.99):
        name = f"p{int(share * 100)}"
        found[name] = measure.latency_ms(
            engine, measure.PLANNED_LATENCY, source="stripe", since=since, share=share
        )
        starts = measure.latency_ms(
            engine, measure.FIRST_ATTEMPT_LATENCY, source="stripe", since=since, share=share
        )
        found[f"{name} start of delivery"] = starts.get("enrollments") if starts else None
    engine.dispose()
    return found


PARTS = ("ingest", "e2e", "scaling", "isolation", "search")


def run(sizes: Sizes, say: Say, parts: tuple[str, ...] = PARTS) -> Results:
    results = Results(machine=machine())
    if "ingest" in parts:
        _ingest(results, sizes, say)
    if "e2e" in parts:
        _e2e(results, sizes, say)
    if "scaling" in parts:
        _scaling(results, sizes, say)
    if "isolation" in parts:
        _isolation(results, sizes, say)
    if "search" in parts:
        say(f"search: an e-mail or a payment id among {sizes.search_events:,} events")
        results.search = search.measure(data_root("bench-search"), events=sizes.search_events)
    return results


def _ingest(results: Results, sizes: Sizes, say: Say) -> None:
    say("ingest: the receiver beside an empty and a minimal durable endpoint")
    system = SystemUnderTest(data_root("bench-ingest")).start()
    try:
        results.machine.update(server_versions(system))
        results.ingest = ingest.measure(system, sizes.ingest_levels, sizes.ingest_requests)
    finally:
        system.stop()


def _e2e(results: Results, sizes: Sizes, say: Say) -> None:
    say(f"end to end: {sizes.purchases} purchases, one worker process per lane")
    system = SystemUnderTest(data_root("bench-e2e")).start()
    try:
        results.e2e = purchases_run(system, sizes.purchases)
    finally:
        system.stop()


def _scaling(results: Results, sizes: Sizes, say: Say) -> None:
    for processes in (1, 2, 4):
        say(f"scaling: {processes} worker process(es) per lane")
        system = SystemUnderTest(
            data_root(f"bench-scale{processes}"), pool=dict.fromkeys(LANES, processes)
        ).start()
        try:
            row = purchases_run(system, sizes.scaling_purchases)
            results.scaling.append({"processes_per_lane": processes, **row})
        finally:
            system.stop()


def _isolation(results: Results, sizes: Sizes, say: Say) -> None:
    say("isolation: payments-lane latency, idle and under an analytics flood")
    system = SystemUnderTest(data_root("bench-isolation")).start()
    try:
        results.isolation = isolation(system, sizes, say)
    finally:
        system.stop()
