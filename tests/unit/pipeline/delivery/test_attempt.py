"""One delivery's try, where it never reaches the destination: reclaimed leases, ordering."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from pipeline.config.load import load_config
from pipeline.delivery.attempt import attempt
from pipeline.runtime import Runtime
from pipeline.settings import Settings
from tasks.celery_app import create_celery
from tests.support.db import insert_delivery, insert_event, rows
from tests.support.stack import CONFIG


@pytest.fixture
def runtime(settings: Settings, clean: None) -> Iterator[Runtime]:
    found = Runtime.build(
        settings, create_celery(settings), config=load_config(CONFIG, settings.env)
    )
    yield found
    found.close()


def leased(runtime: Runtime, *, call_began_ago: float) -> int:
    """An enrollment whose worker died mid-call `call_began_ago` seconds ago (75 s leases)."""
    delivery_id = insert_delivery(runtime.engine, insert_event(runtime.engine), status="in_flight")
    with runtime.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE deliveries SET attempts = 1, claimed_by = 'task-1',"
                " lease_until = now() + make_interval(secs => 75 - :ago)"
            ),
            {"ago": call_began_ago},
        )
    return delivery_id


def test_a_reclaimed_create_waits_until_the_dead_workers_call_must_be_over(
    runtime: Runtime,
) -> None:
    # Given a worker killed half a second into creating an enrollment (the timeout is 2 s)
    delivery_id = leased(runtime, call_began_ago=0.5)
    # When its message comes back at once (same task id)
    outcome = attempt(runtime, delivery_id, claimant="task-1")
    # Then it does not look yet: the first create may still land; it waits, without an attempt
    assert outcome == "deferred"
    found = rows(
        runtime.engine,
        "SELECT status, attempts, extract(epoch FROM next_attempt_at - now()) AS wait"
        " FROM deliveries",
    )
    assert found[0]["status"] == "pending" and found[0]["attempts"] == 1
    assert 2.0 <= found[0]["wait"] <= 3.0
