"""The receiver's one-LPUSH publisher writes what Celery itself writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
import redis

from pipeline import keys
from pipeline.flow import publish
from pipeline.settings import Settings
from tasks.celery_app import create_celery


@pytest.fixture
def client(redis_url: str, clean: None) -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(redis_url)
    yield found
    found.close()


def test_the_direct_message_matches_celerys_own_field_for_field(
    settings: Settings, client: redis.Redis
) -> None:
    celery = create_celery(settings, task_events=False)
    celery.send_task(keys.VERIFY, args=[42], queue="payments", routing_key="payments")
    publish.DirectPublisher(client).publish(keys.VERIFY, [42], "payments")
    ours, theirs = (
        json.loads(raw) for raw in client.lrange("payments", 0, -1)
    )  # LPUSH: newest first
    volatile = {"id", "root_id", "origin"}
    assert {k: v for k, v in ours["headers"].items() if k not in volatile} == {
        k: v for k, v in theirs["headers"].items() if k not in volatile
    }
    assert ours["body"] == theirs["body"]
    assert {k for k in ours if k != "properties"} == {k for k in theirs if k != "properties"}
    for key in ("delivery_mode", "delivery_info", "priority", "body_encoding"):
        assert ours["properties"][key] == theirs["properties"][key]
    assert ours["properties"]["correlation_id"] == ours["headers"]["id"]


def test_a_broker_that_does_not_answer_is_reported_not_raised() -> None:
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    assert publish.DirectPublisher(unreachable).publish(keys.VERIFY, [1], "payments") is False


def test_a_countdown_travels_as_an_aware_eta_like_celerys(
    settings: Settings, client: redis.Redis
) -> None:
    celery = create_celery(settings, task_events=False)
    celery.send_task(
        keys.DELIVER, args=[7], queue="enrollments", routing_key="enrollments", countdown=30
    )
    publish.DirectPublisher(client).publish(keys.DELIVER, [7], "enrollments", countdown=30)
    ours, theirs = (json.loads(raw) for raw in client.lrange("enrollments", 0, -1))
    ours_eta = datetime.fromisoformat(ours["headers"]["eta"])
    theirs_eta = datetime.fromisoformat(theirs["headers"]["eta"])
    assert ours_eta.tzinfo is not None and abs((ours_eta - theirs_eta).total_seconds()) < 2


def test_the_runtime_publishes_directly_only_to_a_redis_broker(settings: Settings) -> None:
    celery = create_celery(settings, task_events=False)
    assert isinstance(
        publish.publisher_for("redis://127.0.0.1:6379/0", celery), publish.DirectPublisher
    )
    assert isinstance(
        publish.publisher_for("amqp://guest@127.0.0.1//", celery), publish.CeleryPublisher
    )


def test_a_backlog_message_lands_in_the_same_low_priority_list_as_celerys(
    settings: Settings, client: redis.Redis
) -> None:
    celery = create_celery(settings, task_events=False)
    celery.send_task(
        keys.VERIFY,
        args=[3],
        queue="payments",
        routing_key="payments",
        priority=keys.BACKLOG_PRIORITY,
    )
    publish.DirectPublisher(client).publish(
        keys.VERIFY, [3], "payments", priority=keys.BACKLOG_PRIORITY
    )
    backlog = keys.priority_list("payments", keys.BACKLOG_PRIORITY)
    assert client.llen("payments") == 0
    ours, theirs = (json.loads(raw) for raw in client.lrange(backlog, 0, -1))
    assert ours["properties"]["priority"] == theirs["properties"]["priority"] == 9
