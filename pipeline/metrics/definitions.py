"""Every metric the processes themselves count: one place, built once per process on first use.

Counters and histograms live in the process that counts (in multiprocess mode, in its files under
`PROMETHEUS_MULTIPROC_DIR`, merged at scrape time). What can be read from PostgreSQL or Redis
when Prometheus scrapes (queue depth, dead letters, circuit state, job runs, the business plane)
is computed then (`pipeline.metrics.collectors`), never counted here.

Labels are bounded by the config file and the code: sources, destinations, actions, lanes, steps,
outcomes. Nothing a buyer sends (e-mail, order, user or event id) is ever a label.
Nothing is built at import: `metrics()` builds the set the first time a process counts.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

# receiving is milliseconds; a delivery from receipt spans retries, so minutes to hours
RECEIVER_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0)

# what `stackwire_webhooks_received_total{outcome}` may say (docs/observability.md)
WEBHOOK_OUTCOMES = (
    "accepted",
    "duplicate",
    "conflict",
    "ignored",
    "quarantined",
    "bad_signature",
    "stale",
    "too_large",
    "malformed",
    "rate_limited",
    "unavailable",
    "error",
)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    webhooks_received: Counter
    receiver_latency: Histogram
    signing_secret_matched: Counter
    steps: Counter
    deliveries: Counter
    delivery_latency: Histogram
    rate_limit_wait: Counter
    circuit_transitions: Counter
    tasks: Counter


def build(registry: CollectorRegistry) -> Metrics:
    def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
        return Counter(name, doc, labels, registry=registry)

    return Metrics(
        registry=registry,
        webhooks_received=counter(
            "stackwire_webhooks_received",
            "Webhook requests answered, by source and outcome (a duplicate is not a success).",
            ("source", "outcome"),
        ),
        receiver_latency=Histogram(
            "stackwire_receiver_latency_seconds",
            "Time the receiver took to answer a webhook request (read, verify, store, publish).",
            buckets=RECEIVER_BUCKETS,
            registry=registry,
        ),
        signing_secret_matched=counter(
            "stackwire_signing_secret_matched",
            "Verified webhooks by which configured signing secret matched (0 = the first).",
            ("source", "index"),
        ),
        steps=counter(
            "stackwire_steps",
            "verify and fetch runs, by what they settled (retrying, failed, processed, ...).",
            ("step", "outcome"),
        ),
        deliveries=counter(
            "stackwire_deliveries",
            "Delivery tries settled: delivered, retrying, dead, deferred (rate limit), held.",
            ("destination", "action", "outcome"),
        ),
        delivery_latency=Histogram(
            "stackwire_delivery_latency_seconds",
            "From the receipt of the webhook to the delivery recorded delivered, by lane.",
            ("lane",),
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        ),
        rate_limit_wait=counter(
            "stackwire_rate_limit_wait_seconds",
            "Seconds deliveries waited for a destination's shared token bucket or 429 pause "
            "(slept in the worker, or deferred for).",
            ("destination",),
        ),
        circuit_transitions=counter(
            "stackwire_circuit_transitions",
            "Changes of a destination's circuit breaker, by the state it went to.",
            ("destination", "to_state"),
        ),
        tasks=counter(
            "stackwire_tasks",
            "Celery tasks run by the workers, by task name and final state.",
            ("task", "state"),
        ),
    )


def initialise(destinations: Iterable[str]) -> None:
    """Series that exist from the start at 0, so a rate that is still zero reads as 0, not as
    missing (a labelled counter has no series until its first count, and in multiprocess mode
    no family either)."""
    found = metrics()
    for name in destinations:
        found.rate_limit_wait.labels(name)


@functools.cache
def metrics() -> Metrics:
    """This process's metrics, built on first use (in multiprocess mode: after the fork)."""
    return build(CollectorRegistry(auto_describe=True))
