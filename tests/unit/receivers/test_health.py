"""/readyz: the servers answer, the schema is current, and the periodic jobs have not stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from flask import Flask

from pipeline import keys
from pipeline.config.load import load_config
from pipeline.flow.liveness import record_run
from pipeline.settings import Settings
from receivers.app import create_app
from receivers.state import ReceiverState
from tests.support.web import json_of


@pytest.fixture
def app(settings: Settings, clean: None) -> Iterator[Flask]:
    found = create_app(
        settings, config=load_config(settings.config_path, settings.env), configure_logs=False
    )
    yield found
    found.extensions["stackwire"].writer.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(settings.require_redis_url())
    yield found
    found.close()


def started_long_ago(app: Flask) -> ReceiverState:
    state: ReceiverState = app.extensions["stackwire"]
    state.started_at = time.time() - 3600
    return state


def test_a_system_whose_jobs_never_ran_yet_is_ready(app: Flask) -> None:
    started_long_ago(app)
    assert app.test_client().get("/readyz").json == {"status": "ready"}


def test_jobs_that_ran_within_three_intervals_are_ready(app: Flask, client: redis.Redis) -> None:
    started_long_ago(app)
    for job in keys.JOBS:
        record_run(client, job, time.time() - 5)  # one 5 s interval ago
    assert app.test_client().get("/readyz").status_code == 200


def test_a_sweeper_that_stopped_makes_the_receiver_not_ready(
    app: Flask, client: redis.Redis
) -> None:
    # Given a receiver up for an hour, Beat running, and a sweeper last seen a minute ago
    started_long_ago(app)
    record_run(client, keys.BEAT_JOB, time.time())
    record_run(client, keys.SWEEPER_JOB, time.time() - 60)
    # When the load balancer asks
    answer = app.test_client().get("/readyz")
    # Then it is told why not
    assert answer.status_code == 503
    message = json_of(answer)["error"]["message"]
    assert message.startswith("Not ready: the sweeper last ran 60 s ago (every 5 s expected)")
    assert "Beat" not in message


def test_records_of_a_previous_run_get_a_grace_after_a_start(
    app: Flask, client: redis.Redis
) -> None:
    # Redis kept a record from before the restart; Beat has had no time to renew it yet
    record_run(client, keys.SWEEPER_JOB, time.time() - 3600)
    assert app.test_client().get("/readyz").status_code == 200
    started_long_ago(app)
    assert app.test_client().get("/readyz").status_code == 503
