"""The Slack incoming-webhook emulator answers as Slack does: plain-text `ok` or a plain-text error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import Fault, SandboxState
from tests.support.web import json_of

HOOK = "/slack/services/T0001/B0001/XsandboxSecret01"


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=1)


@pytest.fixture
def client(state: SandboxState) -> FlaskClient:
    return create_sandbox_app(state).test_client()


def answer(client: FlaskClient, body: object, **kwargs: Any) -> tuple[int, str]:
    response = client.post(HOOK, json=body, **kwargs)
    assert response.mimetype == "text/plain"
    return response.status_code, response.get_data(as_text=True)


def test_a_message_is_ok_and_recorded(client: FlaskClient, state: SandboxState) -> None:
    assert answer(client, {"text": "hello"}) == (200, "ok")
    messages = json_of(client.get("/_sandbox/slack/messages"))["messages"]
    assert messages == {"XsandboxSecret01": ["hello"]}
    assert state.summary()["providers"]["slack"] == {
        "effects": {"message.posted": 1},
        "duplicates": {},
    }


def test_the_same_message_twice_shows_as_a_duplicate(
    client: FlaskClient, state: SandboxState
) -> None:
    answer(client, {"text": "hello"})
    answer(client, {"text": "hello"})
    assert state.summary()["providers"]["slack"]["duplicates"] == {"message.posted": 1}


def test_a_form_payload_is_accepted_as_slack_does(client: FlaskClient) -> None:
    response = client.post(HOOK, data={"payload": json.dumps({"text": "from a form"})})
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ok")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"channel": "#general"}, (400, "no_text")),
        ({"text": "   "}, (400, "no_text")),
        (["not", "an", "object"], (400, "invalid_payload")),
    ],
)
def test_bad_payloads_get_slacks_error_strings(
    client: FlaskClient, body: object, expected: tuple[int, str]
) -> None:
    assert answer(client, body) == expected


def test_a_body_that_is_not_json_is_an_invalid_payload(client: FlaskClient) -> None:
    response = client.post(HOOK, data=b"{not json", content_type="application/json")
    assert (response.status_code, response.get_data(as_text=True)) == (400, "invalid_payload")
    response = client.post(HOOK, data=b"text", content_type="text/plain")
    assert response.status_code == 400


def test_an_archived_or_revoked_webhook_answers_410_or_404(client: FlaskClient) -> None:
    client.post("/_sandbox/slack/webhooks/XsandboxSecret01/archived")
    assert answer(client, {"text": "hi"}) == (410, "channel_is_archived")
    client.post("/_sandbox/slack/webhooks/XsandboxSecret01/revoked")
    assert answer(client, {"text": "hi"}) == (404, "no_service")
    client.post("/_sandbox/slack/webhooks/XsandboxSecret01/live")
    assert answer(client, {"text": "hi"}) == (200, "ok")


def test_a_malformed_webhook_path_is_no_service(client: FlaskClient) -> None:
    response = client.post("/slack/services/nope/B1/x", json={"text": "hi"})
    assert (response.status_code, response.get_data(as_text=True)) == (404, "no_service")


def test_a_rate_limit_is_plain_text_with_retry_after(
    client: FlaskClient, state: SandboxState
) -> None:
    state.faults["slack"] = Fault(status=429, retry_after=2)
    response = client.post(HOOK, json={"text": "hi"})
    assert (response.status_code, response.get_data(as_text=True)) == (429, "rate_limited")
    assert response.headers["Retry-After"] == "2"
