"""The scrape-time gauges on a real PostgreSQL and Redis: the business plane's values and bucket,
and a number of series that does not grow with the number of buyers."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from pipeline.metrics import exposition
from pipeline.metrics.collectors import (
    ScrapeCollector,
    Sources,
    business_families,
    closed_bucket_end,
)
from pipeline.runtime import Runtime

BUYERS = 10_000
# 10,000 purchases by distinct buyers received two minutes ago (every fourth in EUR), 100 of
# them refunded, one enrollment and one subscription delivered per purchase, 50 enrollments dead
SEED = """
INSERT INTO events (source, provider, external_id, provider_type, lane, status, body, headers,
                    body_sha256, canonical_type, canonical, received_at)
SELECT 'stripe', 'stripe', 'evt_' || n, 'checkout.session.completed', 'payments', 'processed',
       '{}', '{}', '\\x00', 'purchase.completed',
       jsonb_build_object('type', 'purchase.completed', 'key', 'stripe:cs_' || n,
           'contact', jsonb_build_object('email', 'buyer' || n || '@example.com'),
           'purchase', jsonb_build_object('id', 'cs_' || n, 'amount', 4900,
               'currency', CASE WHEN n % 4 = 0 THEN 'eur' ELSE 'usd' END)),
       now() - interval '2 minutes'
FROM generate_series(1, :buyers) AS n;
INSERT INTO events (source, provider, external_id, provider_type, lane, status, body, headers,
                    body_sha256, canonical_type, canonical, received_at)
SELECT 'stripe', 'stripe', 'evt_refund_' || n, 'charge.refunded', 'payments', 'processed',
       '{}', '{}', '\\x00', 'purchase.refunded',
       jsonb_build_object('type', 'purchase.refunded', 'key', 'stripe:ch_' || n || '\\:refunded',
           'purchase', jsonb_build_object('id', 'cs_' || n, 'amount', 4900, 'currency', 'usd')),
       now() - interval '2 minutes'
FROM generate_series(1, 100) AS n WHERE n % 4 <> 0;
INSERT INTO deliveries (event_id, action, destination, lane, idempotency_key, status)
SELECT id, 'courses.enroll', 'courses', 'enrollments', 'enroll:' || id,
       CASE WHEN id <= 50 THEN 'dead' ELSE 'delivered' END
FROM events WHERE canonical_type = 'purchase.completed';
INSERT INTO deliveries (event_id, action, destination, lane, idempotency_key, status)
SELECT id, 'email.subscribe', 'email', 'enrollments', 'subscribe:' || id, 'delivered'
FROM events WHERE canonical_type = 'purchase.completed';
INSERT INTO dead_letters (event_id, delivery_id, step, failure_class, reason, error)
SELECT event_id, id, 'deliver', 'destination_rejected', 'http_422', 'buyer refused'
FROM deliveries WHERE status = 'dead';
"""


def _seed(runtime: Runtime) -> None:
    with runtime.engine.begin() as connection:
        for statement in SEED.split(";\n"):
            if statement.strip():
                connection.execute(text(statement), {"buyers": BUYERS})


def test_the_business_plane_counts_facts_received_before_the_last_closed_minute(
    runtime: Runtime,
) -> None:
    _seed(runtime)
    families = {f.name: f for f in business_families(runtime.engine, time.time())}

    def value(name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in families[name].samples
            if all(s.labels[k] == v for k, v in labels.items())
        )

    assert value("stackwire_purchases", source="stripe", currency="usd") == 7500
    assert value("stackwire_purchases", source="stripe", currency="eur") == 2500
    assert value("stackwire_refunds") == 75
    assert value("stackwire_revenue", currency="usd") == (7500 - 75) * 4900
    assert value("stackwire_revenue", currency="eur") == 2500 * 4900
    assert value("stackwire_enrollments") == BUYERS - 50
    assert value("stackwire_failed_enrollments") == 50
    assert value("stackwire_subscribers") == BUYERS
    assert value("stackwire_bookings") == 0
    as_of = value("stackwire_purchases_as_of_timestamp_seconds")
    assert time.time() - 200 < as_of < time.time() - 60
    # a bucket that closed before any of it was received holds nothing yet
    earlier = {f.name: f for f in business_families(runtime.engine, time.time() - 600)}
    assert not earlier["stackwire_purchases"].samples
    assert not earlier["stackwire_purchases_as_of_timestamp_seconds"].samples


def test_the_bucket_is_the_last_minute_that_ended_at_least_ten_seconds_ago() -> None:
    assert closed_bucket_end(120.0 + 9.0) == 60.0
    assert closed_bucket_end(120.0 + 10.0) == 120.0
    assert closed_bucket_end(179.0) == 120.0


def test_10000_buyers_make_no_more_series_than_one(runtime: Runtime) -> None:
    _seed(runtime)
    collector = ScrapeCollector(
        Sources(
            config=runtime.config,
            celery=runtime.celery,
            redis=lambda: runtime.redis,
            engine=lambda: runtime.engine,
            clock=time.time,
        )
    )
    body = exposition.render(runtime.settings, collector).decode()
    families = list(text_string_to_metric_families(body))
    samples = [s for f in families for s in f.samples]
    # bounded by the config (sources, destinations, actions, lanes) and the code, not by buyers
    assert len(samples) < 500
    labels = {value for s in samples for value in s.labels.values()}
    assert not [v for v in labels if "@" in v or "buyer" in v or "cs_" in v or "evt_" in v]
    up = {
        s.labels["collector"]: s.value for s in samples if s.name == "stackwire_scrape_collector_up"
    }
    assert up == dict.fromkeys(("queues", "dead_letters", "circuits", "jobs", "business"), 1.0)
    dead = [s for s in samples if s.name == "stackwire_dead_letters"]
    assert [(s.labels, s.value) for s in dead] == [
        ({"destination": "courses", "failure_class": "destination_rejected"}, 50.0)
    ]
