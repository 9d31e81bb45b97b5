"""Settling a failed try: the attempt row and the policy's decision, on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.config.load import load_config
from pipeline.delivery.claim import claim
from pipeline.delivery.record import settle_failure
from pipeline.errors import RetryableError
from pipeline.runtime import Runtime
from pipeline.settings import Settings
from tasks.celery_app import create_celery
from tests.support.db import insert_delivery, insert_event, rows, scalar
from tests.support.stack import CONFIG


@pytest.fixture
def runtime(settings: Settings, clean: None) -> Iterator[Runtime]:
    found = Runtime.build(
        settings, create_celery(settings), config=load_config(CONFIG, settings.env)
    )
    yield found
    found.close()


def fail_once(runtime: Runtime, failure: RetryableError) -> float:
    """Claims the course enrollment, fails it; returns the seconds until its next try."""
    delivery_id = insert_delivery(runtime.engine, insert_event(runtime.engine), status="pending")
    with runtime.autocommit.connect() as connection:
        claimed = claim(connection, delivery_id, "task-1")
    assert claimed is not None
    destination = runtime.config.destinations["courses"]
    assert settle_failure(runtime, destination, [claimed], failure, started=0.0, exchange=None) == (
        "retrying"
    )
    wait: float = scalar(
        runtime.engine, "SELECT extract(epoch FROM next_attempt_at - now()) FROM deliveries"
    )
    return wait


def test_after_a_timeout_a_create_only_destination_waits_past_its_timeout(runtime: Runtime) -> None:
    # the enrollment may still be being created at the platform: looking again sooner finds nothing
    timeout = runtime.config.destinations["courses"].timeout_seconds
    assert fail_once(runtime, RetryableError("thinkific timed out", reason="timeout")) >= timeout
    outcomes = rows(runtime.engine, "SELECT outcome FROM attempts")
    assert outcomes == [{"outcome": "unknown"}]  # sent; whether it took effect, nobody knows


def test_a_server_error_is_an_answer_and_is_retried_on_the_usual_backoff(runtime: Runtime) -> None:
    wait = fail_once(runtime, RetryableError("thinkific answered 500", reason="http_500"))
    assert wait <= 1.1  # the first backoff step: at most a second, jittered
    assert rows(runtime.engine, "SELECT outcome FROM attempts") == [{"outcome": "retry"}]
