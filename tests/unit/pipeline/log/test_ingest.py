"""The receiver's one write: an event row and, when it must be, its dead letter and alert, in one
statement; what PostgreSQL refuses for good is not mistaken for an outage."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from pipeline.errors import UnstorableEvent
from pipeline.log.db import create_db_engine
from pipeline.log.ingest import EventWriter, IncomingEvent, Quarantine
from pipeline.settings import Settings
from tests.support.db import rows, scalar

BODY = b'{"id": "evt_1", "type": "checkout.session.completed"}'


def incoming(body: bytes = BODY, **overrides: Any) -> IncomingEvent:
    values: dict[str, Any] = {
        "source": "stripe",
        "provider": "stripe",
        "external_id": "evt_1",
        "provider_type": "checkout.session.completed",
        "lane": "payments",
        "body": body,
        "headers": {"Stripe-Signature": "t=1,v1=ab"},
        "secret_index": 0,
        **overrides,
    }
    return IncomingEvent(**values)


@pytest.fixture
def writer(settings: Settings, clean: None) -> Iterator[EventWriter]:
    made = EventWriter(settings.libpq_url)
    yield made
    made.close()


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    made = create_db_engine(settings)
    yield made
    made.dispose()


@pytest.fixture
def statements(writer: EventWriter, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the writer sends, in order."""
    sent: list[str] = []
    execute = writer._execute

    def counting(sql: str, params: Any) -> tuple[Any, ...]:
        sent.append(sql)
        return execute(sql, params)

    monkeypatch.setattr(writer, "_execute", counting)
    return sent


def test_a_quarantined_body_and_its_dead_letter_are_one_statement(
    writer: EventWriter, engine: Engine, statements: list[str]
) -> None:
    quarantine = Quarantine("unidentified", "internal", "kept for replay")
    recorded = writer.record(incoming(external_id="sha256:ab", quarantine=quarantine))
    assert recorded.outcome == "quarantined"
    # one statement: a crash can no longer leave the row without its dead letter
    assert len(statements) == 1
    [dead] = rows(engine, "SELECT event_id, step, failure_class, reason FROM dead_letters")
    assert dead == {
        "event_id": recorded.event_id,
        "step": "receive",
        "failure_class": "internal",
        "reason": "unidentified",
    }


def test_a_conflict_keeps_the_second_body_and_its_headers_in_one_statement(
    writer: EventWriter, engine: Engine, statements: list[str]
) -> None:
    # Given an event, then the same id with another body and other headers
    first = writer.record(incoming())
    second_body = b'{"id": "evt_1", "type": "checkout.session.completed", "amount": 1}'
    conflict = writer.record(incoming(second_body, headers={"Stripe-Signature": "t=2,v1=cd"}))

    # Then the conflict is counted, alerted and dead-lettered by its one statement
    assert (conflict.outcome, conflict.event_id) == ("conflict", first.event_id)
    assert len(statements) == 2
    assert scalar(engine, "SELECT conflicts FROM events") == 1
    assert scalar(engine, "SELECT kind FROM alerts") == "event_id_conflict"
    [dead] = rows(engine, "SELECT reason, body, payload FROM dead_letters")
    assert (dead["reason"], bytes(dead["body"])) == ("id_conflict", second_body)
    assert dead["payload"] == {
        "body_sha256": hashlib.sha256(second_body).hexdigest(),
        "headers": {"Stripe-Signature": "t=2,v1=cd"},
    }

    # And the same second body sent again is counted, not dead-lettered twice
    assert writer.record(incoming(second_body)).outcome == "conflict"
    assert scalar(engine, "SELECT conflicts FROM events") == 2
    assert scalar(engine, "SELECT count(*) FROM dead_letters") == 1
    assert scalar(engine, "SELECT count FROM alerts") == 2


def test_a_value_postgresql_refuses_for_good_is_unstorable_not_an_outage(
    writer: EventWriter, engine: Engine
) -> None:
    # an id past the btree's ~2.7 kB (SQLSTATE 54000, which psycopg files as an OperationalError)
    with pytest.raises(UnstorableEvent):
        writer.record(incoming(external_id=secrets.token_hex(2000)))
    # the connection was fine and is used again
    assert writer.record(incoming()).outcome == "accepted"
    assert scalar(engine, "SELECT count(*) FROM events") == 1
