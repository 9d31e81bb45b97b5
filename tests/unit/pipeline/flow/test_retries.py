"""One decision per step failure: what PostgreSQL refuses for good is dead-lettered at once, where
it used to be retried as an unreachable database (100 times per task, then lost)."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text

from pipeline.flow import retries
from pipeline.log.ingest import EventWriter, IncomingEvent
from pipeline.runtime import Runtime
from tests.support.db import rows, scalar


def stored_event(runtime: Runtime) -> int:
    writer = EventWriter(runtime.settings.libpq_url)
    try:
        return writer.record(
            IncomingEvent(
                source="stripe",
                provider="stripe",
                external_id="evt_long_object",
                provider_type="checkout.session.completed",
                lane="payments",
                body=b'{"id": "evt_long_object"}',
                headers={},
                secret_index=0,
            )
        ).event_id
    finally:
        writer.close()


def test_a_value_postgresql_refuses_fails_the_event_with_its_dead_letter_at_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a step that stores an object key past the btree's limit (SQLSTATE 54000)
    event_id = stored_event(runtime)

    def fetch_a_huge_key(rt: Runtime, event: int) -> str:
        with rt.engine.begin() as connection:
            connection.execute(
                text("UPDATE events SET object_key = :key WHERE id = :id"),
                {"key": "stripe:cs_" + secrets.token_hex(2000), "id": event},
            )
        return "processed"

    monkeypatch.setitem(retries.STEPS, "verify", fetch_a_huge_key)

    # When the step runs
    outcome = retries.run_step(runtime, "verify", event_id, attempt=1)

    # Then it is not retried: the event fails now, dead-lettered and alerted
    assert (outcome.status, outcome.retry_in) == ("failed", None)
    assert scalar(runtime.engine, "SELECT status FROM events") == "failed"
    [dead] = rows(runtime.engine, "SELECT step, failure_class, reason, error FROM dead_letters")
    assert (dead["step"], dead["failure_class"], dead["reason"]) == (
        "verify",
        "contract",
        "database_refused_data",
    )
    assert "SQLSTATE 54000" in dead["error"]
    assert scalar(runtime.engine, "SELECT count(*) FROM alerts WHERE kind = 'dead_letter'") == 1
