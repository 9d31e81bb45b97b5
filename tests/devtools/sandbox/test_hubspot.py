"""The HubSpot emulator: auth, batch upsert by e-mail, HubSpot's refusals, 207 partial failures,
rate-limit answers and headers, and a record of every contact created or updated."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devtools.sandbox.app import instrument
from devtools.sandbox.state import Fault, SandboxState
from tests.support.web import json_of

PATH = "/hubspot/crm/v3/objects/contacts/batch/upsert"
AUTH = {"Authorization": "Bearer pat-na1-11111111-2222-3333-4444-555555555555"}


def fresh_emulator(name: str) -> tuple[Flask, SandboxState]:
    """The emulator on an app of its own: a fresh copy of its module, so its blueprint is not the
    one the shared sandbox registers (Flask allows no setup on a blueprint once registered)."""
    spec = importlib.util.find_spec(f"devtools.sandbox.{name}")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app, state = Flask(f"test-{name}"), SandboxState(seed=1)
    app.extensions["sandbox"] = state
    instrument(module.blueprint, name, module.error_response)
    app.register_blueprint(module.blueprint, url_prefix=f"/{name}")
    if hasattr(module, "control"):
        app.register_blueprint(module.control, url_prefix=f"/_sandbox/{name}")
    return app, state


@pytest.fixture
def hubspot() -> tuple[FlaskClient, SandboxState]:
    app, state = fresh_emulator("hubspot")
    return app.test_client(), state


def person(email: str, trace: str | None = None, **properties: str) -> dict[str, Any]:
    found: dict[str, Any] = {
        "idProperty": "email",
        "id": email,
        "properties": {"email": email, **properties},
    }
    if trace is not None:
        found["objectWriteTraceId"] = trace
    return found


def test_no_or_a_foreign_token_is_refused_like_hubspot(
    hubspot: tuple[FlaskClient, SandboxState],
) -> None:
    client, state = hubspot
    for headers in ({}, {"Authorization": "Bearer sk_test_x"}):
        response = client.post(PATH, json={"inputs": [person("ada@example.com")]}, headers=headers)
        assert response.status_code == 401
        assert json_of(response)["category"] == "INVALID_AUTHENTICATION"
        assert json_of(response)["message"].startswith("Authentication credentials not found.")
        assert set(json_of(response)) == {"status", "message", "correlationId", "category"}
    assert not state.effects


def test_an_upsert_creates_then_updates_one_contact_per_address(
    hubspot: tuple[FlaskClient, SandboxState],
) -> None:
    client, state = hubspot
    first = client.post(
        PATH,
        headers=AUTH,
        json={
            "inputs": [person("Ada@Example.com", "0", firstname="Ada", lifecyclestage="customer")]
        },
    )
    again = client.post(
        PATH, headers=AUTH, json={"inputs": [person("ada@example.com", lastname="L")]}
    )

    assert first.status_code == again.status_code == 200
    created, updated = json_of(first)["results"][0], json_of(again)["results"][0]
    assert (created["new"], updated["new"]) == (True, False)
    assert created["id"] == updated["id"]
    assert created["objectWriteTraceId"] == "0" and "objectWriteTraceId" not in updated
    assert updated["properties"]["email"] == "ada@example.com"
    assert updated["properties"]["firstname"] == "Ada" and updated["properties"]["lastname"] == "L"
    assert set(json_of(first)) == {
        "status",
        "results",
        "requestedAt",
        "startedAt",
        "completedAt",
        "links",
    }
    assert state.summary()["providers"]["hubspot"] == {
        "effects": {"contact.created": 1, "contact.updated": 1},
        "duplicates": {},
    }


def test_the_dated_api_path_is_served_too(hubspot: tuple[FlaskClient, SandboxState]) -> None:
    client, _ = hubspot
    dated = "/hubspot/crm/objects/2026-03/contacts/batch/upsert"
    assert (
        client.post(dated, headers=AUTH, json={"inputs": [person("a@example.com")]}).status_code
        == 200
    )


def test_more_than_100_inputs_or_a_repeated_id_refuse_the_whole_request(
    hubspot: tuple[FlaskClient, SandboxState],
) -> None:
    client, state = hubspot
    many = [person(f"p{n}@example.com") for n in range(101)]
    twice = [person("ada@example.com"), person("ADA@example.com"), person("g@example.com")]

    too_many = client.post(PATH, headers=AUTH, json={"inputs": many})
    repeated = client.post(PATH, headers=AUTH, json={"inputs": twice})

    assert too_many.status_code == repeated.status_code == 400
    assert "maximum number of inputs" in json_of(too_many)["message"]
    assert json_of(repeated)["message"].startswith("Duplicate IDs found in batch input")
    assert json_of(repeated)["context"] == {"ids": ["ada@example.com"]}
    assert json_of(repeated)["category"] == "VALIDATION_ERROR"
    assert not state.effects


def test_with_trace_ids_an_invalid_input_is_a_207_and_the_rest_is_written(
    hubspot: tuple[FlaskClient, SandboxState],
) -> None:
    client, state = hubspot
    inputs = [
        person("ada@example.com", "0"),
        person("not-an-address", "1"),
        person("grace@example.org", "2", lifecyclestage="boss"),
    ]

    response = client.post(PATH, headers=AUTH, json={"inputs": inputs})

    assert response.status_code == 207
    assert [r["objectWriteTraceId"] for r in json_of(response)["results"]] == ["0"]
    assert json_of(response)["numErrors"] == 2
    codes = {
        e["context"]["objectWriteTraceId"][0]: e["errors"][0]["code"]
        for e in json_of(response)["errors"]
    }
    assert codes == {"1": "INVALID_EMAIL", "2": "INVALID_OPTION"}
    assert all(
        e["message"].startswith("Property values were not valid: ")
        for e in json_of(response)["errors"]
    )
    assert state.summary()["providers"]["hubspot"]["effects"] == {"contact.created": 1}


def test_without_trace_ids_an_invalid_input_refuses_everything(
    hubspot: tuple[FlaskClient, SandboxState],
) -> None:
    client, state = hubspot
    inputs = [person("ada@example.com"), person("grace@example.org", favourite_colour="blue")]

    response = client.post(PATH, headers=AUTH, json={"inputs": inputs})

    assert response.status_code == 400
    assert json_of(response)["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert not state.effects
    client.post("/_sandbox/hubspot/properties/favourite_colour")
    assert client.post(PATH, headers=AUTH, json={"inputs": inputs}).status_code == 200


def test_quotas_answer_429_with_their_policy_and_every_answer_counts_down(
    hubspot: tuple[FlaskClient, SandboxState],
) -> None:
    client, _ = hubspot
    body = {"inputs": [person("ada@example.com")]}
    client.put("/_sandbox/hubspot/limits", json={"ten_secondly": 2, "daily": 100})

    first = client.post(PATH, headers=AUTH, json=body)
    second = client.post(PATH, headers=AUTH, json=body)
    rolling = client.post(PATH, headers=AUTH, json=body)
    client.put("/_sandbox/hubspot/limits", json={"ten_secondly": 100, "daily_used": 100})
    daily = client.post(PATH, headers=AUTH, json=body)

    assert first.headers["X-HubSpot-RateLimit-Remaining"] == "1"
    assert second.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert (rolling.status_code, json_of(rolling)["policyName"]) == (429, "TEN_SECONDLY_ROLLING")
    assert (daily.status_code, json_of(daily)["policyName"]) == (429, "DAILY")
    assert json_of(daily)["message"] == "You have reached your daily limit."
    assert daily.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    assert "Retry-After" not in daily.headers


def test_an_injected_429_has_hubspot_s_rate_limit_body(
    hubspot: tuple[FlaskClient, SandboxState],
) -> None:
    client, state = hubspot
    state.faults["hubspot"] = Fault(status=429, retry_after=2)
    response = client.post(PATH, headers=AUTH, json={"inputs": [person("ada@example.com")]})
    assert response.status_code == 429
    assert json_of(response)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert response.headers["Retry-After"] == "2"
