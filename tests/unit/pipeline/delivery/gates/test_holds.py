"""The prober: held work past its deadline, circuits open too long, on real PostgreSQL and Redis."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from pipeline.config.load import load_config
from pipeline.delivery.deadletter import replay
from pipeline.delivery.gates.holds import probe_circuits
from pipeline.runtime import Runtime
from pipeline.settings import Settings
from tasks.celery_app import create_celery
from tests.support.db import insert_delivery, insert_event, rows
from tests.support.stack import CONFIG


@pytest.fixture
def runtime(settings: Settings, clean: None) -> Iterator[Runtime]:
    config = load_config(CONFIG, settings.env)
    lanes = {
        name: dataclasses.replace(lane, max_hold=3600.0) for name, lane in config.lanes.items()
    }
    found = Runtime.build(
        settings, create_celery(settings), config=dataclasses.replace(config, lanes=lanes)
    )
    yield found
    found.close()


def test_held_work_past_the_lanes_max_hold_is_dead_lettered_as_unavailable(
    runtime: Runtime,
) -> None:
    # Given a paused destination holding one delivery planned two hours ago and one just now
    event_id = insert_event(runtime.engine)
    old = insert_delivery(runtime.engine, event_id, status="held", age_seconds=7200, key="sw_old")
    new = insert_delivery(runtime.engine, event_id, status="held", key="sw_new")
    runtime.redis.set("stackwire:paused:courses", "1")
    # When the prober runs
    report = probe_circuits(runtime)
    # Then only the old one is dead-lettered, with a reason an operator can act on
    assert report["courses"] == "paused, 1 held too long dead-lettered"
    found = rows(runtime.engine, "SELECT id, status FROM deliveries ORDER BY id")
    assert found == [{"id": old, "status": "dead"}, {"id": new, "status": "held"}]
    dead = rows(runtime.engine, "SELECT delivery_id, failure_class, reason FROM dead_letters")
    assert dead == [
        {"delivery_id": old, "failure_class": "destination_unavailable", "reason": "held_too_long"}
    ]


def test_a_replayed_delivery_held_again_gets_a_new_max_hold_not_its_old_deadline(
    runtime: Runtime,
) -> None:
    # Given a delivery planned two hours ago, dead-lettered held too long, then replayed by an
    # operator, and held again because the destination's circuit has not closed yet
    event_id = insert_event(runtime.engine)
    delivery = insert_delivery(runtime.engine, event_id, status="held", age_seconds=7200)
    runtime.redis.set("stackwire:paused:courses", "1")
    probe_circuits(runtime)
    [dead_letter] = rows(runtime.engine, "SELECT id FROM dead_letters")
    assert replay(runtime, dead_letter["id"]).outcome == "replayed"
    with runtime.engine.begin() as connection:
        connection.execute(
            text("UPDATE deliveries SET status = 'held' WHERE id = :id"), {"id": delivery}
        )
    # When the prober runs again
    probe_circuits(runtime)
    # Then it stays held (its hold counts from the replay), no second dead letter
    assert rows(runtime.engine, "SELECT status FROM deliveries") == [{"status": "held"}]
    assert rows(runtime.engine, "SELECT status FROM dead_letters") == [{"status": "replayed"}]


def test_a_circuit_open_longer_than_alert_after_raises_one_alert(runtime: Runtime) -> None:
    # Given a circuit that opened eleven minutes ago (alert_after defaults to ten) and held work
    event_id = insert_event(runtime.engine)
    insert_delivery(runtime.engine, event_id, status="held")
    since = time.time() - 660
    runtime.redis.hset(
        "stackwire:circuit:courses",
        mapping={"state": "open", "opened_at": time.time(), "since": since, "cooldown": 300},
    )
    # When the prober runs twice
    probe_circuits(runtime)
    probe_circuits(runtime)
    # Then one open alert says so, counted twice
    alerts = rows(runtime.engine, "SELECT kind, subject, severity, count FROM alerts")
    assert alerts == [
        {
            "kind": "circuit_open",
            "subject": "destination:courses",
            "severity": "critical",
            "count": 2,
        }
    ]
