"""`/metrics` as `stackwire up` serves it: the receiver under gunicorn, real worker processes with
their prefork pools, Beat, all counting into one multiprocess directory merged at one scrape.

This module runs its own stack (its own database, Redis database, config directory and metrics
directory): the shared stack's Beat would otherwise sweep these events into its own workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from devtools import simulate
from pipeline import keys
from pipeline.metrics import multiproc
from tests.conftest import _worker_number
from tests.support.db import counts
from tests.support.fixtures import FIXTURES
from tests.support.metrics import scrape, series, total
from tests.support.servers import (
    Servers,
    create_database,
    drop_database,
    reset_redis,
    with_redis_db,
)
from tests.support.stack import CONFIG, Stack, build_stack
from tests.support.stripe_events import SECRET, signed
from tests.support.waiting import wait_until

PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"
FAMILIES = (
    # delivery plane
    "stackwire_webhooks_received",
    "stackwire_receiver_latency_seconds",
    "stackwire_signing_secret_matched",
    # processing plane
    "stackwire_steps",
    "stackwire_deliveries",
    "stackwire_delivery_latency_seconds",
    "stackwire_queue_depth",
    "stackwire_queue_oldest_age_seconds",
    "stackwire_dead_letters",
    "stackwire_dead_letter_oldest_age_seconds",
    "stackwire_circuit_state",
    "stackwire_rate_limit_wait_seconds",
    "stackwire_job_last_success_timestamp_seconds",
    # business plane
    *(
        f"stackwire_{name}{suffix}"
        for name in (
            "purchases",
            "revenue",
            "refunds",
            "enrollments",
            "failed_enrollments",
            "subscribers",
            "bookings",
        )
        for suffix in ("", "_as_of_timestamp_seconds")
    ),
)


class MetricsStack:
    def __init__(self, stack: Stack, receiver_url: str, metrics_dir: Path) -> None:
        self.stack = stack
        self.url = receiver_url
        self.metrics_dir = metrics_dir


@pytest.fixture(scope="module")
def mstack(
    servers: Servers, worker_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MetricsStack]:
    root = tmp_path_factory.mktemp("metrics")
    config_dir = root / "config"
    config_dir.mkdir()
    for fragment in [*sorted(CONFIG.glob("*.toml")), FIXTURES / "metrics" / "90-metrics.toml"]:
        (config_dir / fragment.name).symlink_to(fragment)
    metrics_dir = root / "prometheus"
    multiproc.prepare(metrics_dir, wipe=True)
    database_url = create_database(servers.postgres_url, f"{worker_id}_metrics")
    # Redis databases 12-15: the shared fixtures use 1-7 and 8-11 (up to four xdist workers)
    redis_url = with_redis_db(servers.redis_url, 15 - _worker_number(worker_id) % 4)
    reset_redis(redis_url)
    stack = build_stack(
        database_url,
        redis_url,
        root,
        env={"STACKWIRE_CONFIG": str(config_dir), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    )
    try:
        url = stack.start_receiver_process(workers=2)
        stack.start_worker("payments")
        stack.start_worker("enrollments", concurrency=4)
        stack.start_beat()
        stack.wait_for_workers(("payments", "enrollments"))
        yield MetricsStack(stack, url, metrics_dir)
    finally:
        stack.stop()
        drop_database(servers.postgres_url, database_url)


def _delivered(stack: Stack) -> dict[str, int]:
    return counts(stack.runtime.engine, "SELECT status, count(*) FROM deliveries GROUP BY status")


def test_four_pool_processes_make_400_deliveries_counted_400_times_at_the_receiver(
    mstack: MetricsStack,
) -> None:
    stack = mstack.stack
    # Given 100 completed checkouts, each planned as four deliveries on the enrollments lane
    events = simulate.create_purchases(stack.sandbox.url, 100, price=PRICE, amount=4900)
    deliveries = simulate.plan_deliveries(events, redeliver=0.1, seed=3)

    # When their webhooks reach the gunicorn receiver, ten of them twice
    report = simulate.send_all(
        f"{mstack.url}/webhooks/stripe_metrics",
        deliveries,
        simulate.stripe_signer(SECRET),
        rate=0,
        concurrency=4,
    )
    assert report.statuses == {202: 100, 200: 10}
    wait_until(
        lambda: _delivered(stack),
        lambda seen: seen.get("delivered", 0) + seen.get("dead", 0) >= 400,
        timeout=180,
    )
    assert _delivered(stack) == {"delivered": 400}, counts(
        stack.runtime.engine,
        "SELECT d.action || ': ' || l.reason || ': ' || left(l.error, 200), count(*) "
        "FROM dead_letters l JOIN deliveries d ON d.id = l.delivery_id GROUP BY 1",
    )

    # Then the worker's four pool processes made them
    with stack.runtime.engine.connect() as connection:
        workers: int = connection.execute(
            text("SELECT count(DISTINCT worker) FROM attempts WHERE outcome = 'delivered'")
        ).scalar_one()
    assert workers > 1

    # And the receiver's one scrape counts each exactly once, whichever process made it
    found = scrape(mstack.url)
    assert total(found, "stackwire_deliveries_total", outcome="delivered") == 400
    for action in ("courses.enroll", "email.subscribe", "crm.upsert", "team-slack.notify"):
        assert total(found, "stackwire_deliveries_total", action=action, outcome="delivered") == 100
    assert total(found, "stackwire_delivery_latency_seconds_count", lane="enrollments") == 400
    # and the receiver's two gunicorn workers' counts are merged too; a duplicate is no success
    received = "stackwire_webhooks_received_total"
    assert total(found, received, source="stripe_metrics", outcome="accepted") == 100
    assert total(found, received, source="stripe_metrics", outcome="duplicate") == 10
    assert total(found, "stackwire_receiver_latency_seconds_count") >= 110
    assert total(found, "stackwire_signing_secret_matched_total", index="0") >= 110
    assert total(found, "stackwire_steps_total", step="fetch", outcome="processed") >= 100


def test_the_scrape_carries_every_family_and_parses(mstack: MetricsStack) -> None:
    # Given a purchase delivered (whatever ran before in this module)
    stack = mstack.stack
    before = _delivered(stack).get("delivered", 0)
    events = simulate.create_purchases(stack.sandbox.url, 1, price=PRICE, amount=4900)
    simulate.send_all(
        f"{mstack.url}/webhooks/stripe_metrics",
        simulate.plan_deliveries(events, redeliver=0, seed=1),
        simulate.stripe_signer(SECRET),
        rate=0,
        concurrency=1,
    )
    wait_until(lambda: _delivered(stack).get("delivered", 0), lambda n: n == before + 4)
    # and Beat's jobs have run at least once (the sweeper and the prober record their runs)
    wait_until(
        lambda: scrape(mstack.url).get("stackwire_job_last_success_timestamp_seconds", []),
        lambda samples: {s.labels["job"] for s in samples} >= set(keys.JOBS),
        timeout=60,
    )
    # and a request whose signature matches no secret
    body, headers = signed(b'{"id": "evt_forged"}', secret="whsec_forged")
    refused = requests.post(
        f"{mstack.url}/webhooks/stripe_metrics", data=body, headers=headers, timeout=10
    )
    assert refused.status_code == 401

    # When Prometheus scrapes the receiver
    found = scrape(mstack.url)

    # Then every family of the contract is there, in a text prometheus_client's parser reads
    missing = [name for name in FAMILIES if name not in found]
    assert not missing
    assert total(found, "stackwire_webhooks_received_total", outcome="bad_signature") >= 1
    lanes = {s.labels["lane"] for s in found["stackwire_queue_depth"]}
    assert lanes == {*keys.LANES, keys.MAINTENANCE}
    states = {s.labels["destination"]: s.value for s in found["stackwire_circuit_state"]}
    assert states["courses"] == 0
    up = {s.labels["collector"]: s.value for s in found["stackwire_scrape_collector_up"]}
    assert set(up.values()) == {1.0}
    # and a series count that stays small
    assert series(found) < 2000


def test_a_pool_process_per_task_over_1000_tasks_keeps_the_directory_bounded_and_every_count(
    mstack: MetricsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = mstack.stack
    # Given an analytics worker whose four pool processes each run one task and are replaced
    stack.start_worker("analytics", concurrency=4, max_tasks_per_child=1)
    stack.wait_for_workers(("analytics",))
    before = total(scrape(mstack.url), "stackwire_tasks_total", task=keys.DELIVER)

    # When it runs 1,000 tasks (deliveries that no longer exist: each is a quick no-op)
    for number in range(1000):
        stack.runtime.publisher.publish(keys.DELIVER, [10_000_000 + number], "analytics")

    # Then while it works, every scrape answers and the directory stays bounded
    timings: list[float] = []
    files: list[int] = []

    def progress() -> float:
        started = time.perf_counter()
        found = scrape(mstack.url)
        timings.append(time.perf_counter() - started)
        files.append(len(list(mstack.metrics_dir.glob("*.db"))))
        return total(found, "stackwire_tasks_total", task=keys.DELIVER) - before

    wait_until(progress, lambda done: done >= 1000, timeout=900, every=1.0)
    # and no count was lost with the 1,000 processes that exited (nor any counted twice)
    time.sleep(2)
    assert progress() == 1000
    # live processes' files (receiver, three workers, their pools) plus one archive per type
    assert max(files) < 60
    with capsys.disabled():
        timings.sort()
        print(
            f"\n/metrics over 1,000 recycled pool processes: {len(timings)} scrapes, median "
            f"{timings[len(timings) // 2] * 1000:.0f} ms, max {timings[-1] * 1000:.0f} ms, "
            f"files at most {max(files)}, at the end {files[-1]}"
        )
    stack.stop_worker("analytics")
