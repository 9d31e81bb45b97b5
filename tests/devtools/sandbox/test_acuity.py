"""The Acuity emulator: Basic auth per account, Acuity's error bodies and formats, signed form posts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qs

import pytest
from flask.testing import FlaskClient

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import SandboxState
from tests.support.fixtures import FIXTURES
from tests.support.web import json_of

USER, KEY = "21110176", "acuity-api-key"
DOCUMENTED = set(json.loads((FIXTURES / "acuity" / "appointment.json").read_text()))


def basic(user: str = USER, key: str = KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


@pytest.fixture
def client() -> FlaskClient:
    return create_sandbox_app(SandboxState(seed=1)).test_client()


def control(client: FlaskClient, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = client.post(f"/_sandbox/acuity/{path}", json=body or {})
    assert answer.status_code == 200, answer.json
    found: dict[str, Any] = json_of(answer)
    return found


def schedule(client: FlaskClient, **changes: Any) -> dict[str, Any]:
    spec = {
        "user_id": USER,
        "api_key": KEY,
        "email": "li@example.com",
        "firstName": "Li",
        "lastName": "Wei",
        "timezone": "Europe/Paris",
        "calendarTimezone": "America/New_York",
        "start": "2026-11-01T14:00:00Z",
        **changes,
    }
    return control(client, "appointments", spec)


def read(client: FlaskClient, appointment_id: int) -> dict[str, Any]:
    answer = client.get(f"/acuity/api/v1/appointments/{appointment_id}", headers=basic())
    assert answer.status_code == 200
    found: dict[str, Any] = json_of(answer)
    return found


def signed_by_the_api_key(webhook: dict[str, Any], key: str = KEY) -> bool:
    expected = base64.b64encode(
        hmac.new(key.encode(), webhook["body"].encode(), hashlib.sha256).digest()
    ).decode()
    return hmac.compare_digest(expected, webhook["headers"]["X-Acuity-Signature"])


@pytest.mark.parametrize(
    "headers", [{}, basic(key="wrong"), basic(user="999"), {"Authorization": f"Bearer {KEY}"}]
)
def test_bad_credentials_get_acuitys_401(client: FlaskClient, headers: dict[str, str]) -> None:
    schedule(client)
    answer = client.get("/acuity/api/v1/appointments/1", headers=headers)
    assert answer.status_code == 401
    assert answer.json == {"status_code": 401, "message": "Unauthorized", "error": "unauthorized"}


def test_the_appointment_has_every_documented_field_formatted_like_acuity(
    client: FlaskClient,
) -> None:
    found = read(client, schedule(client)["id"])
    assert set(found) == DOCUMENTED
    # 14:00Z is 09:00 in New York the day it leaves summer time; the client is in Paris
    assert (found["datetime"], found["date"], found["time"], found["endTime"]) == (
        "2026-11-01T09:00:00-0500",
        "November 1, 2026",
        "9:00am",
        "10:00am",
    )
    assert (found["timezone"], found["calendarTimezone"], found["canceled"]) == (
        "Europe/Paris",
        "America/New_York",
        False,
    )
    assert (found["duration"], found["email"]) == ("60", "li@example.com")


def test_another_accounts_appointment_and_unknown_ids_are_acuitys_404(client: FlaskClient) -> None:
    mine = schedule(client)["id"]
    schedule(client, user_id="42", api_key="other-key")
    theirs = client.get(f"/acuity/api/v1/appointments/{mine}", headers=basic("42", "other-key"))
    unknown = client.get("/acuity/api/v1/appointments/7", headers=basic())
    for answer in (theirs, unknown):
        assert answer.status_code == 404
        assert json_of(answer)["error"] == "not_found"
        assert json_of(answer)["status_code"] == 404


def test_scheduling_sends_scheduled_then_changed_signed_with_the_api_key(
    client: FlaskClient,
) -> None:
    booked = schedule(client, calendarID=5, appointmentTypeID=9)
    sent = booked["webhooks"]
    assert [parse_qs(w["body"]) for w in sent] == [
        {
            "action": [action],
            "id": [str(booked["id"])],
            "calendarID": ["5"],
            "appointmentTypeID": ["9"],
        }
        for action in ("scheduled", "changed")
    ]
    assert all(signed_by_the_api_key(w) for w in sent)
    assert not signed_by_the_api_key(sent[0], key="another-key")
    assert sent[0]["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_an_account_can_subscribe_to_the_specific_actions_only(client: FlaskClient) -> None:
    sent = schedule(client, webhooks=["scheduled", "canceled"])["webhooks"]
    assert [parse_qs(w["body"])["action"] for w in sent] == [["scheduled"]]


def test_a_reschedule_moves_the_appointment_across_the_dst_change(client: FlaskClient) -> None:
    booked = schedule(client, start="2026-10-31T13:00:00Z")
    assert read(client, booked["id"])["datetime"] == "2026-10-31T09:00:00-0400"
    moved = control(
        client, f"appointments/{booked['id']}/reschedule", {"start": "2026-11-01T14:00:00Z"}
    )
    assert [parse_qs(w["body"])["action"] for w in moved["webhooks"]] == [
        ["rescheduled"],
        ["changed"],
    ]
    assert read(client, booked["id"])["datetime"] == "2026-11-01T09:00:00-0500"


def test_a_cancellation_marks_the_appointment_canceled(client: FlaskClient) -> None:
    booked = schedule(client)
    sent = control(client, f"appointments/{booked['id']}/cancel")["webhooks"]
    assert [parse_qs(w["body"])["action"] for w in sent] == [["canceled"], ["changed"]]
    found = read(client, booked["id"])
    assert (found["canceled"], found["canClientCancel"]) == (True, False)
    assert client.post(f"/_sandbox/acuity/appointments/{booked['id']}/cancel").status_code == 400


def test_rate_limits_answer_like_acuity(client: FlaskClient) -> None:
    booked = schedule(client)
    client.put("/_sandbox/faults/acuity", json={"rate_limit": 1})
    first = client.get(f"/acuity/api/v1/appointments/{booked['id']}", headers=basic())
    second = client.get(f"/acuity/api/v1/appointments/{booked['id']}", headers=basic())
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.json == {
        "status_code": 429,
        "error": "too_many_requests",
        "message": "Rate limit reached. Limit 10req/s and 20 concurrent connections.",
    }
