"""Gauges computed when Prometheus scrapes, from the broker, Redis and PostgreSQL.

What the log and the broker already know is read, never counted: queue depth and the age of the
oldest waiting work, open dead letters, each circuit's state, the periodic jobs' last runs, and
the business plane. Each collector answers on its own: one whose server does not answer leaves
its families out and says so in `stackwire_scrape_collector_up{collector}` (0), so the scrape
still carries everything else.

The business plane is computed over *closed buckets*: totals of the facts of every webhook
received before the end of the last closed minute (a minute is closed 10 s after it ends, longer
than any of our transactions), computed once per minute and process and served from memory in
between. Each value has an `…_as_of_timestamp_seconds` companion: the receipt time of the newest
webhook behind it. docs/observability.md has the rule and the definition of each value.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery
from prometheus_client.core import GaugeMetricFamily, Metric
from redis.exceptions import RedisError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline import keys, status
from pipeline.config.model import Config
from pipeline.delivery.gates import circuit
from pipeline.errors import INFRASTRUCTURE_ERRORS
from pipeline.flow import liveness
from pipeline.keys import LANES

log = logging.getLogger(__name__)

BUCKET_SECONDS = 60
BUCKET_GRACE_SECONDS = 10
# stackwire_circuit_state's values
CIRCUIT_VALUES = {
    circuit.CLOSED: 0,
    circuit.HALF_OPEN: 1,
    circuit.READY: 1,  # open past its cooldown: the next delivery is a probe, as half-open
    circuit.OPEN: 2,
    circuit.PAUSED: 3,
}
NO_DESTINATION = "none"  # a dead letter of an event (verify, fetch, receive), not of a delivery

# work waiting on each lane: open events due for their next step, and deliveries due for a try
# (neither in a retry's backoff, nor in flight, nor held by a gate)
OLDEST_WAITING = text(
    """
    SELECT lane, extract(epoch FROM now() - min(since)) AS age FROM (
        SELECT lane, received_at AS since FROM events
        WHERE status IN ('received', 'verified')
          AND (dispatched_at IS NULL OR dispatched_at <= now())
        UNION ALL
        SELECT lane, coalesce(next_attempt_at, created_at) FROM deliveries
        WHERE status IN ('pending', 'retrying')
          AND (next_attempt_at IS NULL OR next_attempt_at <= now())
    ) AS waiting GROUP BY lane
    """
)
OPEN_DEAD_LETTERS = text(
    """
    SELECT coalesce(d.destination, :none) AS destination, l.failure_class, count(*) AS open,
           extract(epoch FROM now() - min(l.created_at)) AS age
    FROM dead_letters l LEFT JOIN deliveries d ON d.id = l.delivery_id
    WHERE l.status = 'open' GROUP BY 1, 2
    """
)
# one fact per canonical key: two provider events about one purchase are one purchase
CANONICAL_FACTS = text(
    """
    SELECT canonical_type AS type, source, currency, count(*) AS facts, sum(amount) AS amount,
           extract(epoch FROM max(received_at)) AS newest
    FROM (
        SELECT DISTINCT ON (canonical_type, canonical->>'key') canonical_type, source,
               lower(canonical->'purchase'->>'currency') AS currency,
               (canonical->'purchase'->>'amount')::bigint AS amount, received_at
        FROM events
        WHERE status = 'processed' AND received_at < to_timestamp(:end)
          AND canonical_type IN ('purchase.completed', 'purchase.refunded', 'booking.created')
        ORDER BY canonical_type, canonical->>'key', received_at
    ) AS facts
    GROUP BY 1, 2, 3
    """
)
# the effects Stackwire made: grants of access and list subscriptions, by their final state
DELIVERED_EFFECTS = text(
    """
    SELECT split_part(d.action, '.', 2) AS verb, d.status, count(*) AS effects,
           extract(epoch FROM max(e.received_at)) AS newest
    FROM deliveries d JOIN events e ON e.id = d.event_id
    WHERE e.received_at < to_timestamp(:end) AND d.status IN ('delivered', 'dead')
      AND split_part(d.action, '.', 2) IN ('enroll', 'subscribe')
    GROUP BY 1, 2
    """
)


@dataclass(frozen=True)
class Sources:
    """Where the scrape-time gauges are read from: the receiver process's own connections."""

    config: Config
    celery: Celery
    redis: Callable[[], redis.Redis]
    engine: Callable[[], Engine]
    clock: Callable[[], float]


def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


class ScrapeCollector:
    """Every scrape-time family, each part guarded on its own."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.business = BusinessPlane()

    def collect(self) -> Iterator[Metric]:
        up = gauge(
            "stackwire_scrape_collector_up",
            "1 when this part of the scrape could read its server, 0 when it could not.",
            ["collector"],
        )
        parts: list[tuple[str, Callable[[], list[Metric]]]] = [
            ("queues", self._queues),
            ("dead_letters", self._dead_letters),
            ("circuits", self._circuits),
            ("jobs", self._jobs),
            ("business", lambda: self.business.families(self.sources)),
        ]
        for name, part in parts:
            try:
                families = part()
            except (*INFRASTRUCTURE_ERRORS, SQLAlchemyError, RedisError) as exc:
                log.warning(
                    "a metrics collector could not read its server",
                    extra={"collector": name, "error": type(exc).__name__},
                )
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up

    def _queues(self) -> list[Metric]:
        depth = gauge(
            "stackwire_queue_depth",
            "Messages waiting in each lane's broker queue (every priority).",
            ["lane"],
        )
        for lane, count in status.queue_depths(self.sources.celery).items():
            depth.add_metric([lane], count)
        with self.sources.engine().connect() as connection:
            rows = {row.lane: float(row.age) for row in connection.execute(OLDEST_WAITING)}
        age = gauge(
            "stackwire_queue_oldest_age_seconds",
            "Age of the oldest work waiting on each lane, from the log: an open event due for "
            "its next step or a delivery due for a try (0 when none waits).",
            ["lane"],
        )
        for lane in LANES:
            age.add_metric([lane], max(rows.get(lane, 0.0), 0.0))
        return [depth, age]

    def _dead_letters(self) -> list[Metric]:
        with self.sources.engine().connect() as connection:
            rows = connection.execute(OPEN_DEAD_LETTERS, {"none": NO_DESTINATION}).all()
        count = gauge(
            "stackwire_dead_letters",
            f"Open dead letters by destination ({NO_DESTINATION!r}: an event's own step) and "
            "failure class.",
            ["destination", "failure_class"],
        )
        for row in rows:
            count.add_metric([row.destination, row.failure_class], row.open)
        oldest = gauge(
            "stackwire_dead_letter_oldest_age_seconds",
            "Age of the oldest open dead letter (0 when none is open).",
        )
        oldest.add_metric([], max((float(row.age) for row in rows), default=0.0))
        return [count, oldest]

    def _circuits(self) -> list[Metric]:
        client = self.sources.redis()
        state = gauge(
            "stackwire_circuit_state",
            "Each destination's circuit: 0 closed, 1 half-open (a probe may go), 2 open, "
            "3 paused by an operator.",
            ["destination"],
        )
        for name in sorted(self.sources.config.destinations):
            found = circuit.status(client, name).state
            state.add_metric([name], CIRCUIT_VALUES.get(found, 2))
        return [state]

    def _jobs(self) -> list[Metric]:
        runs = liveness.last_runs(self.sources.redis())
        last = gauge(
            "stackwire_job_last_success_timestamp_seconds",
            "When each periodic job last completed a run (absent: never ran).",
            ["job"],
        )
        for job in keys.JOBS:
            at = runs.get(job)
            if at is not None:
                last.add_metric([job], at)
        return [last]


@dataclass
class BusinessPlane:
    """The business gauges of the last closed bucket, recomputed when a new bucket closes."""

    _bucket: float | None = None
    _families: list[Metric] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def families(self, sources: Sources) -> list[Metric]:
        end = closed_bucket_end(sources.clock())
        with self._lock:
            if self._bucket != end:
                self._families = business_families(sources.engine(), end)
                self._bucket = end
            return self._families


def closed_bucket_end(now: float) -> float:
    """The end of the last closed minute (one ended at least the grace ago), as a UNIX time."""
    return math.floor((now - BUCKET_GRACE_SECONDS) / BUCKET_SECONDS) * BUCKET_SECONDS


def business_families(engine: Engine, end: float) -> list[Metric]:
    with engine.connect() as connection:
        facts = connection.execute(CANONICAL_FACTS, {"end": end}).all()
        effects = connection.execute(DELIVERED_EFFECTS, {"end": end}).all()
    plane = _Plane()
    for row in facts:
        plane.fact(row)
    for row in effects:
        plane.effect(row)
    return plane.families()


class _Plane:
    DOCS = {
        "purchases": ("Completed purchases (one per canonical purchase).", ["source", "currency"]),
        "revenue": ("Completed purchases minus full refunds, in minor units.", ["currency"]),
        "refunds": ("Refunded purchases.", []),
        "enrollments": ("Course enrollments Stackwire delivered.", []),
        "failed_enrollments": ("Course enrollments dead-lettered (never granted).", []),
        "subscribers": ("List subscriptions Stackwire delivered.", []),
        "bookings": ("Bookings made (one per canonical booking).", []),
    }

    def __init__(self) -> None:
        self.values: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in self.DOCS}
        self.newest: dict[str, float] = {}
        for name, (_doc, labels) in self.DOCS.items():
            if not labels:
                self.values[name][()] = 0

    def add(self, name: str, labels: tuple[str, ...], value: float, newest: Any) -> None:
        found = self.values[name]
        found[labels] = found.get(labels, 0) + value
        if newest is not None:
            self.newest[name] = max(self.newest.get(name, 0.0), float(newest))

    def fact(self, row: Any) -> None:
        currency = row.currency or "unknown"
        amount = int(row.amount or 0)
        if row.type == "purchase.completed":
            self.add("purchases", (row.source, currency), row.facts, row.newest)
            self.add("revenue", (currency,), amount, row.newest)
        elif row.type == "purchase.refunded":
            self.add("refunds", (), row.facts, row.newest)
            self.add("revenue", (currency,), -amount, row.newest)
        elif row.type == "booking.created":
            self.add("bookings", (), row.facts, row.newest)

    def effect(self, row: Any) -> None:
        if row.verb == "enroll":
            name = "enrollments" if row.status == "delivered" else "failed_enrollments"
            self.add(name, (), row.effects, row.newest)
        elif row.verb == "subscribe" and row.status == "delivered":
            self.add("subscribers", (), row.effects, row.newest)

    def families(self) -> list[Metric]:
        found: list[Metric] = []
        for name, (doc, labels) in self.DOCS.items():
            family = gauge(
                f"stackwire_{name}",
                f"{doc} Webhooks received up to the last closed minute.",
                labels,
            )
            for label_values, value in sorted(self.values[name].items()):
                family.add_metric(list(label_values), value)
            as_of = gauge(
                f"stackwire_{name}_as_of_timestamp_seconds",
                f"Receipt time of the newest webhook behind stackwire_{name} (absent: none yet).",
            )
            if name in self.newest:
                as_of.add_metric([], self.newest[name])
            found += [family, as_of]
        return found
