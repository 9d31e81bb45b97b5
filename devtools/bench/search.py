"""Search over a large log: an e-mail or a payment id among N events, timed as the admin API and
`stackwire events search` run it (`pipeline.ops.search.search_events`), with its query plan.

A PostgreSQL of its own (embedded), migrated, filled by COPY with N processed purchases, each
with its own buyer (keyed e-mail handle) and payment id, then ANALYZEd. Queries are drawn at
random: buyers present (one event each), buyers absent, and payment ids.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

from devtools.bench.system import free_port
from devtools.local.embedded import EmbeddedPostgres
from pipeline.log.db import create_db_engine, migrate
from pipeline.ops.handles import email_handle, id_handle
from pipeline.ops.search import EventQuery, matched_events_sql, search_events
from pipeline.settings import Settings

KEY = b"bench-handle-key-0123456789abcdef"
COPY = (
    "COPY events (source, provider, external_id, provider_type, lane, status, body, headers, "
    "body_sha256, canonical_type, canonical, handles, origin) FROM STDIN"
)


def fill(url: str, count: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(COPY) as copy:
            for n in range(count):
                handles = [email_handle(KEY, f"buyer{n}@example.com"), id_handle(f"pi_{n:08d}")]
                canonical = {"type": "purchase.completed", "purchase": {"id": f"cs_{n:08d}"}}
                copy.write_row(
                    (
                        "stripe",
                        "stripe",
                        f"evt_{n:08d}",
                        "checkout.session.completed",
                        "payments",
                        "processed",
                        b"{}",
                        "{}",
                        n.to_bytes(32, "big"),
                        "purchase.completed",
                        json.dumps(canonical),
                        json.dumps(handles),
                        "webhook",
                    )
                )
        cursor.execute("ANALYZE events")
    return time.perf_counter() - started


def measure(root: Path, *, events: int, queries: int = 300) -> dict[str, Any]:
    postgres = EmbeddedPostgres(root / "postgres", free_port())
    url = postgres.start(root / "postgres.log")
    try:
        settings = Settings(database_url=url)
        migrate(settings)
        fill_seconds = fill(url, events)
        engine = create_db_engine(settings, pool_size=1)
        picker = random.Random(7)
        kinds: dict[str, list[float]] = {"email present": [], "email absent": [], "payment id": []}
        with engine.connect() as connection:
            for round_ in range(queries):
                n = picker.randrange(events)
                kind, query = (
                    ("email present", EventQuery(email=f"buyer{n}@example.com"))
                    if round_ % 3 == 0
                    else ("email absent", EventQuery(email=f"nobody{n}@example.com"))
                    if round_ % 3 == 1
                    else ("payment id", EventQuery(payment_id=f"pi_{n:08d}"))
                )
                started = time.perf_counter()
                page = search_events(connection, query, KEY)
                kinds[kind].append((time.perf_counter() - started) * 1000)
                if kind != "email absent":
                    assert len(page.data) == 1, (kind, n)
            prefix, body, params = matched_events_sql(EventQuery(email="a@example.com"), KEY)
            plan: Any = (
                connection.execute(
                    text(f"EXPLAIN {prefix}SELECT e.id {body} ORDER BY e.id DESC LIMIT 51"), params
                )
                .scalars()
                .all()
            )
            size = connection.execute(
                text("SELECT pg_size_pretty(pg_relation_size('events_handles_idx'))")
            ).scalar()
        engine.dispose()
    finally:
        postgres.stop()
    return {
        "events": events,
        "fill_seconds": round(fill_seconds, 1),
        "handles_index_size": size,
        "plan": [line.strip() for line in plan],
        "ms": {
            kind: {
                "queries": len(times),
                "p50": round(statistics.median(times), 2),
                "p99": round(sorted(times)[int(len(times) * 0.99) - 1], 2),
                "max": round(max(times), 2),
            }
            for kind, times in kinds.items()
        },
    }
