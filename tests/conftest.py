"""Fixtures: real servers, a database per xdist worker, the running stack for integration tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.runtime import Runtime
from pipeline.settings import Settings
from tasks.celery_app import create_celery
from tests.support.servers import (
    Servers,
    create_database,
    drop_database,
    reset_redis,
    truncate,
    with_redis_db,
)
from tests.support.stack import CONFIG, Stack, build_stack

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _worker_number(worker_id: str) -> int:
    return int(worker_id[2:]) if worker_id.startswith("gw") else 0


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    found = Servers.start()
    yield found
    found.stop()


@pytest.fixture(scope="session")
def database_url(servers: Servers, worker_id: str) -> Iterator[str]:
    url = create_database(servers.postgres_url, worker_id)
    yield url
    drop_database(servers.postgres_url, url)


@pytest.fixture(scope="session")
def redis_url(servers: Servers, worker_id: str) -> str:
    """For tests without workers: nothing consumes what they publish here."""
    # database 0 is left to whatever else uses this Redis; each xdist worker takes its own
    return with_redis_db(servers.redis_url, 8 + _worker_number(worker_id) % 8)


@pytest.fixture(scope="session")
def stack_redis_url(servers: Servers, worker_id: str) -> str:
    """For the running stack: its workers consume these queues."""
    return with_redis_db(servers.redis_url, 1 + _worker_number(worker_id) % 7)


@pytest.fixture
def clean(database_url: str, redis_url: str) -> None:
    """An empty event log and no Stackwire keys in Redis, before the test."""
    truncate(database_url)
    reset_redis(redis_url)


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "STACKWIRE_CONFIG": str(CONFIG),
            "SANDBOX_PORT": "1",
            "STACKWIRE_DATA_DIR": str(tmp_path),
        }
    )


@pytest.fixture
def runtime(settings: Settings, clean: None) -> Iterator[Runtime]:
    """What a worker holds, in the test process, on an empty log: no worker consumes what it
    publishes (the tests' own Redis database)."""
    built = Runtime.build(settings, create_celery(settings, task_events=False))
    yield built
    built.close()


@pytest.fixture(scope="session")
def stack(
    database_url: str, stack_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Receiver, sandbox and one real worker process per lane, shared by this worker's tests."""
    log_dir = tmp_path_factory.mktemp("stack")
    running = build_stack(database_url, stack_redis_url, log_dir)
    truncate(database_url)
    reset_redis(stack_redis_url)
    try:
        for lane in ("payments", "enrollments", "analytics"):
            running.start_worker(lane)
        running.start_beat()  # the sweeper and the circuit prober are part of the system
        running.wait_for_workers()
        yield running
    finally:
        running.stop()
        if os.environ.get("STACKWIRE_KEEP_LOGS"):
            print(f"stack logs kept in {log_dir}")


@pytest.fixture
def live(stack: Stack, database_url: str, stack_redis_url: str) -> Stack:
    """The shared stack, emptied: no events, no sandbox records, no faults."""
    truncate(database_url)
    reset_redis(stack_redis_url)
    stack.sandbox_state.reset()
    return stack
