"""The sweeper republishes what the log says is unfinished: behind fresh work, backing off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from pipeline import keys
from pipeline.config.load import load_config
from pipeline.flow.sweeper import sweep
from pipeline.log.events import move
from pipeline.runtime import Runtime
from pipeline.settings import Settings
from tasks.celery_app import create_celery
from tests.support.db import insert_event, scalar
from tests.support.stack import CONFIG


@pytest.fixture
def runtime(settings: Settings, clean: None) -> Iterator[Runtime]:
    found = Runtime.build(
        settings, create_celery(settings), config=load_config(CONFIG, settings.env)
    )
    yield found
    found.close()


def stuck_event(rt: Runtime) -> int:
    """An event committed long ago and never verified (its message lost, or it keeps failing)."""
    event_id = insert_event(rt.engine, lane="payments")
    with rt.engine.begin() as connection:
        connection.execute(
            text("UPDATE events SET status = 'received', updated_at = now() - interval '1 hour'")
        )
    return event_id


def dispatched_ago(rt: Runtime, seconds: float) -> None:
    with rt.engine.begin() as connection:
        connection.execute(
            text("UPDATE events SET dispatched_at = now() - make_interval(secs => :s)"),
            {"s": seconds},
        )


def test_republished_work_goes_behind_fresh_work(runtime: Runtime) -> None:
    stuck_event(runtime)
    assert sweep(runtime).verify == 1
    assert runtime.redis.llen("payments") == 0
    assert runtime.redis.llen(keys.priority_list("payments", keys.BACKLOG_PRIORITY)) == 1


def test_an_item_that_keeps_coming_back_is_republished_ever_less_often(runtime: Runtime) -> None:
    stuck_event(runtime)
    assert sweep(runtime).verify == 1  # first publish
    assert sweep(runtime).verify == 0  # still in flight
    dispatched_ago(runtime, 61)
    assert sweep(runtime).verify == 1  # after 60 s: the message was lost
    dispatched_ago(runtime, 61)
    assert sweep(runtime).verify == 0  # the second re-publish waits 120 s
    dispatched_ago(runtime, 121)
    assert sweep(runtime).verify == 1
    assert scalar(runtime.engine, "SELECT dispatches FROM events") == 3


def test_moving_on_resets_the_backoff(runtime: Runtime) -> None:
    event_id = stuck_event(runtime)
    sweep(runtime)
    dispatched_ago(runtime, 61)
    sweep(runtime)
    assert scalar(runtime.engine, "SELECT dispatches FROM events") == 2
    with runtime.engine.begin() as connection:
        moved = move(connection, event_id, expected="received", to="verified", step="verify")
    assert moved and scalar(runtime.engine, "SELECT dispatches FROM events") == 0
