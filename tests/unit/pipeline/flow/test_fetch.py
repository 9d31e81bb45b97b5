"""The ordering guard in `settle`: only an event that acts makes an older one stale."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from pipeline.flow.fetch import settle
from pipeline.log.events import StoredEvent
from pipeline.log.models import EventStatus
from pipeline.providers.base import Fetched, Verdict
from pipeline.providers.shared import shape
from pipeline.runtime import Runtime
from pipeline.settings import Settings
from tasks.celery_app import create_celery
from tests.support.db import rows

OBJECT_KEY = "stripe:subscription:sub_1Guard"


@pytest.fixture
def rt(settings: Settings, clean: None) -> Iterator[Runtime]:
    runtime = Runtime.build(settings, create_celery(settings, task_events=False))
    yield runtime
    runtime.close()


def verified_event(rt: Runtime, external_id: str, provider_type: str) -> StoredEvent:
    with rt.engine.begin() as connection:
        event_id: int = connection.execute(
            text(
                "INSERT INTO events (source, provider, external_id, provider_type, lane, body,"
                " headers, body_sha256, status) VALUES ('stripe', 'stripe', :x, :t, 'payments',"
                " '\\x00', '{}', '\\x00', 'verified') RETURNING id"
            ),
            {"x": external_id, "t": provider_type},
        ).scalar_one()
    return StoredEvent(
        event_id,
        "stripe",
        "stripe",
        external_id,
        provider_type,
        "payments",
        b"",
        {},
        datetime.now(UTC),
        EventStatus.VERIFIED,
    )


def started() -> dict[str, Any]:
    # a canonical type no test flow acts on: settling plans nothing and publishes nothing
    return shape.event(
        "subscription.started",
        key="stripe:sub_1Guard:subscription.started",
        source="stripe",
        provider="stripe",
        occurred_at=1_760_000_000,
        contact=shape.contact("guard@example.com"),
        subscription={"id": "sub_1Guard", "status": "active", "items": []},
    )


def settle_at(rt: Runtime, event: StoredEvent, result: Any, version: int) -> str:
    fetched = Fetched({"id": "sub_1Guard"}, OBJECT_KEY, version)
    return settle(rt, event, result, fetched, time.perf_counter(), expected=EventStatus.VERIFIED)


def outcomes(rt: Runtime) -> list[str]:
    found = rows(rt.engine, "SELECT status, reason FROM events ORDER BY id")
    return [f"{r['status']}{':' + r['reason'] if r['reason'] else ''}" for r in found]


def test_a_newer_event_that_decided_nothing_does_not_make_an_older_acting_one_stale(
    rt: Runtime,
) -> None:
    # Given a newer event about the subscription that was ignored (a metadata change)
    newer = verified_event(rt, "evt_newer", "customer.subscription.updated")
    older = verified_event(rt, "evt_older", "customer.subscription.created")
    settle_at(rt, newer, Verdict("ignore", "subscription_still_active"), version=2000)
    # When the older event, which starts the subscription, settles after it
    settle_at(rt, older, started(), version=1000)
    # Then it is processed: nothing acted on the newer state, so nothing made it stale
    assert outcomes(rt) == ["ignored:subscription_still_active", "processed"]
    claimed = rows(rt.engine, "SELECT version, event_id FROM object_versions")
    assert claimed == [{"version": 1000, "event_id": older.id}]


def test_an_older_event_is_still_superseded_by_a_newer_one_that_acted(rt: Runtime) -> None:
    newer = verified_event(rt, "evt_newer", "customer.subscription.deleted")
    older = verified_event(rt, "evt_older", "customer.subscription.created")
    older_wait = verified_event(rt, "evt_older_wait", "customer.subscription.created")
    settle_at(rt, newer, started(), version=2000)
    settle_at(rt, older, started(), version=1000)
    # a verdict on a state older than one acted on is stale too (not left waiting forever)
    settle_at(rt, older_wait, Verdict("wait", "subscription_not_active"), version=1000)
    assert outcomes(rt) == [
        "processed",
        "ignored:superseded_by_newer_state",
        "ignored:superseded_by_newer_state",
    ]
