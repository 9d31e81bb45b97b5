"""The GA4 emulator: 204 for everything it receives (invalid events silently dropped), the
validation server's messages, the query parameters it needs, its limits, and a record of each
event so that a re-send shows up as a duplicate."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from devtools.sandbox.state import SandboxState
from tests.devtools.sandbox.test_hubspot import fresh_emulator
from tests.support.web import json_of

QUERY = "?measurement_id=G-STACKWIRE1&api_secret=ga4_test_api_secret"
COLLECT, DEBUG = f"/ga4/mp/collect{QUERY}", f"/ga4/debug/mp/collect{QUERY}"


@pytest.fixture
def ga4() -> tuple[FlaskClient, SandboxState]:
    app, state = fresh_emulator("ga4")
    return app.test_client(), state


def purchase(transaction: str = "stripe:cs_1", **params: Any) -> dict[str, Any]:
    return {
        "name": "purchase",
        "timestamp_micros": int((time.time() - 60) * 1e6),
        "params": {"transaction_id": transaction, "value": 49.0, "currency": "USD", **params},
    }


def recorded(state: SandboxState) -> dict[str, Any]:
    return dict(state.summary()["providers"].get("ga4", {}))


def test_a_valid_request_is_recorded_and_answered_204_empty(
    ga4: tuple[FlaskClient, SandboxState],
) -> None:
    client, state = ga4
    body = {"client_id": "1.2", "events": [purchase("stripe:cs_1"), purchase("stripe:cs_2")]}

    response = client.post(COLLECT, json=body)

    assert (response.status_code, response.data) == (204, b"")
    assert recorded(state) == {"effects": {"event.recorded": 2}, "duplicates": {}}
    stored = state.store("ga4", "events")["1.2|purchase|stripe:cs_1"]
    assert stored["params"]["value"] == 49.0 and stored["measurement_id"] == "G-STACKWIRE1"


def test_a_re_sent_event_is_a_visible_duplicate(ga4: tuple[FlaskClient, SandboxState]) -> None:
    client, state = ga4
    signup = {
        "name": "signed_up",
        "params": {"plan": "pro"},
        "timestamp_micros": int(time.time() * 1e6),
    }
    for _ in range(2):
        client.post(COLLECT, json={"client_id": "1.2", "events": [purchase(), signup]})
    assert recorded(state)["duplicates"] == {"event.recorded": 2}


def test_invalid_events_are_dropped_silently_and_the_debug_server_says_why(
    ga4: tuple[FlaskClient, SandboxState],
) -> None:
    client, state = ga4
    events = [
        {"name": "_badEventName", "params": {}},
        purchase(),
        {"name": "session_start"},
        {"name": "refund", "params": {"value": 3}},
    ]
    body = {"client_id": "1.2", "events": events}

    collected = client.post(COLLECT, json=body)
    checked = client.post(DEBUG, json=body)

    assert collected.status_code == 204
    assert recorded(state)["effects"] == {"event.recorded": 1}
    assert checked.status_code == 200
    codes = [(m["fieldPath"], m["validationCode"]) for m in json_of(checked)["validationMessages"]]
    assert codes == [
        ("events[0].name", "NAME_INVALID"),
        ("events[2].name", "NAME_RESERVED"),
        ("events[3].params.currency", "VALUE_REQUIRED"),
    ]
    assert "Event at index: [0]" in json_of(checked)["validationMessages"][0]["description"]


def test_the_validation_server_records_nothing(ga4: tuple[FlaskClient, SandboxState]) -> None:
    client, state = ga4
    answer = client.post(DEBUG, json={"client_id": "1.2", "events": [purchase()]})
    assert answer.json == {"validationMessages": []}
    assert recorded(state) == {}


@pytest.mark.parametrize(
    ("events", "code"),
    [
        ([purchase(f"t{n}") for n in range(26)], "EXCEEDED_MAX_ENTITIES"),
        ([], "VALUE_REQUIRED"),
        ([purchase(note="x" * 101)], "VALUE_OUT_OF_BOUNDS"),
        (
            [{**purchase(), "timestamp_micros": int((time.time() - 73 * 3600) * 1e6)}],
            "VALUE_OUT_OF_BOUNDS",
        ),
        ([{"name": "x", "params": {f"p{n}": n for n in range(26)}}], "EXCEEDED_MAX_ENTITIES"),
        ([{"name": "x" * 41}], "NAME_INVALID"),
    ],
)
def test_limits_are_checked(
    ga4: tuple[FlaskClient, SandboxState], events: list[Any], code: str
) -> None:
    client, state = ga4
    body = {"client_id": "1.2", "events": events}
    assert client.post(COLLECT, json=body).status_code == 204
    assert recorded(state) == {}
    assert code in {
        m["validationCode"] for m in json_of(client.post(DEBUG, json=body))["validationMessages"]
    }


def test_a_missing_client_id_drops_the_request(ga4: tuple[FlaskClient, SandboxState]) -> None:
    client, state = ga4
    assert client.post(COLLECT, json={"events": [purchase()]}).status_code == 204
    assert recorded(state) == {}


def test_the_stream_and_secret_are_required_but_the_debug_server_ignores_the_secret(
    ga4: tuple[FlaskClient, SandboxState],
) -> None:
    client, _ = ga4
    body = {"client_id": "1.2", "events": [purchase()]}
    assert client.post("/ga4/mp/collect?measurement_id=G-1", json=body).status_code == 400
    assert client.post("/ga4/mp/collect?api_secret=s", json=body).status_code == 400
    assert client.post("/ga4/debug/mp/collect?measurement_id=G-1", json=body).status_code == 200
    assert client.get(COLLECT).status_code == 405  # POST only


def test_a_body_over_130_kb_is_refused(ga4: tuple[FlaskClient, SandboxState]) -> None:
    client, state = ga4
    big = json.dumps(
        {"client_id": "1.2", "events": [purchase(), {"name": "x", "pad": "y" * 140_000}]}
    )
    response = client.post(COLLECT, data=big, content_type="application/json")
    assert response.status_code == 413
    assert json_of(response)["error"]["code"] == 413
    assert recorded(state) == {}
