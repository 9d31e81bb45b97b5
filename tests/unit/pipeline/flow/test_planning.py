"""Planning: one delivery per action, keyed by the canonical subject, never twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Connection, text

from pipeline.config.load import load_config
from pipeline.flow.planning import plan_deliveries
from pipeline.log.db import create_db_engine
from pipeline.log.events import StoredEvent
from pipeline.settings import Settings
from tests.support.db import rows

DOCUMENT = {"type": "purchase.completed", "key": "stripe:cs_1", "source": "stripe"}


def stored_event(connection: Connection, number: int) -> StoredEvent:
    event_id: int = connection.execute(
        text(
            "INSERT INTO events (source, provider, external_id, provider_type, lane, body, headers,"
            " body_sha256) VALUES ('stripe', 'stripe', :x, 't', 'payments', '\\x00', '{}', '\\x00') "
            "RETURNING id"
        ),
        {"x": f"evt_{number}"},
    ).scalar_one()
    return StoredEvent(
        event_id,
        "stripe",
        "stripe",
        f"evt_{number}",
        "t",
        "payments",
        b"",
        {},
        datetime.now(UTC),
        "received",
    )


def test_a_second_event_about_the_same_purchase_plans_nothing_and_says_so(
    settings: Settings, clean: None
) -> None:
    config = load_config(settings.config_path, settings.env)
    engine = create_db_engine(settings)
    with engine.begin() as connection:
        first = plan_deliveries(connection, config, stored_event(connection, 1), DOCUMENT)
        second = plan_deliveries(connection, config, stored_event(connection, 2), DOCUMENT)
    assert [lane for _, lane, _ in first] == ["enrollments", "enrollments", "analytics"]
    assert second == []
    steps = rows(engine, "SELECT outcome, detail FROM event_steps WHERE step = 'plan' ORDER BY id")
    assert steps[0]["outcome"] == "planned" and len(steps[0]["detail"]["planned"]) == 3
    assert steps[1] == {
        "outcome": "nothing_to_do",
        "detail": {
            "planned": [],
            "already_planned": ["courses.enroll", "email.subscribe", "analytics.track"],
        },
    }
    assert json.dumps(steps)  # the trace is plain JSON
    engine.dispose()
