"""Replaying what the receiver set aside: a quarantined body identified again with today's code,
the second body of an id conflict as a new event. Real PostgreSQL; nothing consumes the queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from pipeline.delivery.deadletter import replay
from pipeline.delivery.rereceive import derived_id
from pipeline.errors import BadPayload
from pipeline.providers.stripe.source import StripeSource
from pipeline.runtime import Runtime
from receivers.app import create_app
from tests.support.db import rows, scalar
from tests.support.stripe_events import checkout_completed, signed


@pytest.fixture
def client(runtime: Runtime) -> Iterator[FlaskClient]:
    app = create_app(runtime.settings, config=runtime.config, configure_logs=False)
    yield app.test_client()
    app.extensions["stackwire"].writer.close()


def post(client: FlaskClient, event: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/webhooks/stripe", data=signed(event)[0], headers=signed(event)[1])
    found: dict[str, Any] = response.json or {}
    return found


def quarantined(client: FlaskClient, event: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> int:
    """Posts `event` while our Stripe module is broken; the id of its dead letter."""

    def broken(*_: object) -> None:
        raise KeyError("a bug in a provider module")

    with monkeypatch.context() as patched:
        patched.setattr(StripeSource, "identify", broken)
        assert post(client, event)["status"] == "quarantined"
    ids = [r["id"] for r in rows_of(client, "SELECT id FROM dead_letters ORDER BY id")]
    return int(ids[-1])


def rows_of(client: FlaskClient, sql: str, **params: Any) -> list[dict[str, Any]]:
    state = client.application.extensions["stackwire"]
    return rows(state.engine, sql, **params)


def test_an_unidentified_body_replayed_takes_its_real_id_and_type_and_runs(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a signed checkout our module could not identify (kept under its digest)
    event = checkout_completed()
    dead_letter = quarantined(client, event, monkeypatch)
    [before] = rows(runtime.engine, "SELECT id, external_id, provider_type, status FROM events")
    assert before["external_id"].startswith("sha256:")

    # When the module is fixed and an operator replays it
    assert replay(runtime, dead_letter).outcome == "replayed"

    # Then its row carries the event's own id and type, back in the flow, and the letter is done
    [after] = rows(
        runtime.engine, "SELECT id, external_id, provider_type, status, lane FROM events"
    )
    assert after == {
        "id": before["id"],
        "external_id": event["id"],
        "provider_type": "checkout.session.completed",
        "status": "received",
        "lane": "payments",
    }
    assert scalar(runtime.engine, "SELECT status FROM dead_letters") == "replayed"


def test_a_replay_while_still_unreadable_leaves_the_letter_open(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead_letter = quarantined(client, checkout_completed(), monkeypatch)

    def refusing(*_: object) -> None:
        raise BadPayload("missing_event_type", "A Stripe event needs a string 'type'.")

    monkeypatch.setattr(StripeSource, "identify", refusing)
    assert replay(runtime, dead_letter).outcome == "still_unreadable"
    assert scalar(runtime.engine, "SELECT status FROM dead_letters") == "open"
    assert scalar(runtime.engine, "SELECT status FROM events") == "quarantined"


def test_identified_again_as_an_id_already_stored_with_that_body_is_a_duplicate(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an event stored normally, and the same body quarantined when our module was broken
    event = checkout_completed()
    original = post(client, event)["event_id"]
    dead_letter = quarantined(client, event, monkeypatch)

    # When the quarantined copy is replayed
    assert replay(runtime, dead_letter).outcome == "duplicate"

    # Then it counts as a redelivery of the original and is set aside
    found = rows(runtime.engine, "SELECT id, status, reason, redeliveries FROM events ORDER BY id")
    assert [(r["status"], r["reason"], r["redeliveries"]) for r in found] == [
        ("received", None, 1),
        ("ignored", "duplicate", 0),
    ]
    assert found[0]["id"] == original


def test_identified_again_as_an_id_stored_with_another_body_is_a_conflict(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an event stored normally, and the same id with another body quarantined
    event = checkout_completed()
    post(client, event)
    other = checkout_completed(amount_total=1)
    dead_letter = quarantined(client, other, monkeypatch)

    # When the quarantined body is replayed
    assert replay(runtime, dead_letter).outcome == "conflict"

    # Then it is an id conflict as at the receiver: counted, alerted, its body dead-lettered
    assert (
        scalar(runtime.engine, "SELECT conflicts FROM events WHERE external_id = :e", e=event["id"])
        == 1
    )
    [conflict] = rows(runtime.engine, "SELECT body FROM dead_letters WHERE reason = 'id_conflict'")
    assert bytes(conflict["body"]) == signed(other)[0]
    assert scalar(runtime.engine, "SELECT kind FROM alerts") == "event_id_conflict"


def test_a_conflicting_body_replayed_is_a_new_event_once(
    client: FlaskClient, runtime: Runtime
) -> None:
    # Given an event and a second body under its id (a conflict, kept with its body)
    event = checkout_completed()
    post(client, event)
    second = checkout_completed(amount_total=1)
    assert post(client, second)["status"] == "conflict"
    dead_letter = int(scalar(runtime.engine, "SELECT id FROM dead_letters"))

    # When an operator replays it, twice
    outcomes = [replay(runtime, dead_letter).outcome for _ in range(2)]

    # Then the second body is one new event, its id derived from the original's and the body
    assert outcomes == ["replayed", "duplicate"]
    body = signed(second)[0]
    found = rows(
        runtime.engine, "SELECT external_id, status, body, replays FROM events ORDER BY id"
    )
    assert [r["external_id"] for r in found] == [event["id"], derived_id(event["id"], body)]
    assert (found[1]["status"], bytes(found[1]["body"]), found[1]["replays"]) == (
        "received",
        body,
        1,
    )
