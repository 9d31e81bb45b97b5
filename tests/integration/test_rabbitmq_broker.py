"""The same pipeline on RabbitMQ: kombu carries the tasks, everything else is unchanged."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from devtools import simulate
from tests.support.db import counts
from tests.support.servers import reset_redis, truncate
from tests.support.stack import Stack, build_stack
from tests.support.stripe_events import SECRET
from tests.support.waiting import wait_until

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"


def rabbitmq_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def rabbit_stack(
    database_url: str, stack_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    if not rabbitmq_answers():
        if os.environ.get("STACKWIRE_CI"):
            pytest.fail("RabbitMQ is not running on 127.0.0.1:5672; .ci/run starts it")
        pytest.skip("RabbitMQ is not running here (CI starts it)")
    truncate(database_url)
    reset_redis(stack_redis_url)
    stack = build_stack(
        database_url, stack_redis_url, tmp_path_factory.mktemp("rabbit"), broker_url=RABBITMQ_URL
    )
    try:
        for lane in ("payments", "enrollments", "analytics"):
            stack.start_worker(lane, name=f"{lane}-rabbit")
        stack.wait_for_workers()
        yield stack
    finally:
        stack.stop()
        truncate(database_url)


def test_purchases_flow_end_to_end_with_rabbitmq_as_the_broker(rabbit_stack: Stack) -> None:
    events = simulate.create_purchases(rabbit_stack.sandbox.url, 30, price=PRICE, amount=4900)
    report = simulate.send_all(
        f"{rabbit_stack.receiver.url}/webhooks/stripe",
        simulate.plan_deliveries(events, 0.2, seed=5),
        simulate.stripe_signer(SECRET),
        rate=0,
        concurrency=4,
    )
    assert report.statuses[202] == 30
    delivered = "SELECT status, count(*) FROM deliveries GROUP BY status"
    wait_until(
        lambda: counts(rabbit_stack.runtime.engine, delivered),
        lambda s: s == {"delivered": 90},
        timeout=120,
    )
    summary = rabbit_stack.sandbox_state.summary()["providers"]
    assert summary["thinkific"]["effects"]["enrollment.created"] == 30
    assert all(provider["duplicates"] == {} for provider in summary.values())
    assert rabbit_stack.settings.effective_broker_url.startswith("amqp://")
