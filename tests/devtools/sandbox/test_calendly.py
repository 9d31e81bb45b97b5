"""The Calendly emulator: real paths, Bearer auth and error bodies, and the webhooks a booking sends."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import SandboxState
from pipeline.errors import SignatureError
from pipeline.providers.calendly.source import SOURCE
from pipeline.providers.calendly.source import SOURCE as CALENDLY_SOURCE
from pipeline.signatures.base import SignedRequest
from schemas.contracts.base import ContractReport, check
from tests.support.contexts import received_headers, source_config
from tests.support.web import json_of

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6InRlc3QifQ.c2lnbmF0dXJl"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEY = "calendly-signing-key"


@pytest.fixture
def client() -> FlaskClient:
    return create_sandbox_app(SandboxState(seed=1)).test_client()


def control(client: FlaskClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(f"/_sandbox/calendly/{path}", json=body)
    assert answer.status_code == 200, answer.json
    found: dict[str, Any] = json_of(answer)
    return found


def book(client: FlaskClient, **changes: Any) -> dict[str, Any]:
    spec = {
        "email": "ana@example.com",
        "name": "Ana Lima",
        "timezone": "America/Sao_Paulo",
        "start_time": "2026-05-04T13:00:00Z",
        "signing_key": KEY,
        **changes,
    }
    return control(client, "bookings", spec)


def document(webhook: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(webhook["body"])
    return found


def verified_by_our_receiver(webhook: dict[str, Any], key: str = KEY) -> None:
    source = source_config(
        CALENDLY_SOURCE, signing_secrets=(key,), tolerance_seconds=180, max_body_bytes=262144
    )
    headers = received_headers(webhook["headers"])
    request = SignedRequest(webhook["body"].encode(), headers, {}, time.time())
    CALENDLY_SOURCE.signature.verify(source, request)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": f"Basic {TOKEN}"}],
)
def test_reads_without_a_valid_bearer_token_get_calendlys_401(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    answer = client.get("/calendly/scheduled_events/anything", headers=headers)
    assert answer.status_code == 401
    assert answer.json == {"title": "Unauthenticated", "message": "The access token is invalid"}


def test_a_revoked_token_is_refused(client: FlaskClient) -> None:
    client.post(f"/_sandbox/calendly/tokens/{TOKEN}/revoke")
    assert client.get("/calendly/scheduled_events/x", headers=AUTH).status_code == 401


def test_a_booking_is_readable_in_resource_envelopes(client: FlaskClient) -> None:
    booked = book(client)
    payload = document(booked["webhook"])["payload"]
    path = payload["uri"].removeprefix("http://localhost/calendly")
    invitee = client.get(f"/calendly{path}", headers=AUTH)
    assert invitee.status_code == 200
    assert json_of(invitee)["resource"] == {
        k: v for k, v in payload.items() if k != "scheduled_event"
    }
    event = json_of(client.get(f"/calendly{path.split('/invitees/')[0]}", headers=AUTH))
    assert event["resource"] == payload["scheduled_event"]
    assert event["resource"]["start_time"] == "2026-05-04T13:00:00.000000Z"
    assert event["resource"]["end_time"] == "2026-05-04T13:30:00.000000Z"


def test_unknown_objects_get_calendlys_404(client: FlaskClient) -> None:
    booked = book(client)
    other = book(client, email="bo@example.com")
    invitee = booked["invitee"]
    event_of_other = document(other["webhook"])["payload"]["event"].rsplit("/", 1)[-1]
    for path in (
        "/scheduled_events/nope",
        f"/scheduled_events/{event_of_other}/invitees/{invitee}",
    ):
        answer = client.get(f"/calendly{path}", headers=AUTH)
        assert answer.status_code == 404
        assert answer.json == {
            "title": "Resource Not Found",
            "message": "The server could not find the requested resource.",
        }


def test_the_booking_webhook_is_signed_and_shaped_like_calendlys(client: FlaskClient) -> None:
    webhook = book(client)["webhook"]
    assert webhook["headers"]["Content-Type"] == "application/json"
    verified_by_our_receiver(webhook)
    with pytest.raises(SignatureError):
        verified_by_our_receiver(webhook, key="another-key")
    sent = document(webhook)
    assert set(sent) == {"created_at", "created_by", "event", "payload"}
    assert sent["event"] == "invitee.created"
    contract = SOURCE.contract_for("invitee.created", sent)
    assert contract is not None and check(contract, sent) == ContractReport()


def test_a_reschedule_sends_the_canceled_old_invitee_then_the_new_one(client: FlaskClient) -> None:
    booked = book(client)
    moved = control(
        client,
        f"invitees/{booked['invitee']}/reschedule",
        {"start_time": "2026-05-05T13:00:00Z", "signing_key": KEY},
    )
    canceled, created = (document(w) for w in moved["webhooks"])
    for webhook in moved["webhooks"]:
        verified_by_our_receiver(webhook)
    assert (canceled["event"], created["event"]) == ("invitee.canceled", "invitee.created")
    old, new = canceled["payload"], created["payload"]
    assert (old["status"], old["rescheduled"], old["new_invitee"]) == ("canceled", True, new["uri"])
    assert (new["status"], new["rescheduled"], new["old_invitee"]) == ("active", False, old["uri"])
    assert old["scheduled_event"]["status"] == "canceled"
    assert new["scheduled_event"]["start_time"] == "2026-05-05T13:00:00.000000Z"
    assert (new["email"], new["timezone"]) == ("ana@example.com", "America/Sao_Paulo")
    assert old["updated_at"] >= new["created_at"]


def test_a_cancellation_is_recorded_on_the_invitee_and_its_event(client: FlaskClient) -> None:
    booked = book(client)
    sent = document(
        control(
            client, f"invitees/{booked['invitee']}/cancel", {"reason": "sick", "signing_key": KEY}
        )["webhook"]
    )
    assert sent["event"] == "invitee.canceled"
    assert (sent["payload"]["status"], sent["payload"]["rescheduled"]) == ("canceled", False)
    assert sent["payload"]["cancellation"]["reason"] == "sick"
    path = sent["payload"]["uri"].removeprefix("http://localhost/calendly")
    assert json_of(client.get(f"/calendly{path}", headers=AUTH))["resource"]["status"] == "canceled"
    # a canceled invitee cannot be canceled or moved again
    assert (
        client.post(
            f"/_sandbox/calendly/invitees/{booked['invitee']}/cancel", json={"signing_key": KEY}
        ).status_code
        == 400
    )


def test_control_requests_need_a_signing_key(client: FlaskClient) -> None:
    answer = client.post(
        "/_sandbox/calendly/bookings",
        json={
            "email": "a@example.com",
            "timezone": "UTC",
            "start_time": "2026-05-04T13:00:00Z",
        },
    )
    assert answer.status_code == 400
    assert json_of(answer)["title"] == "Invalid Argument"


def test_reads_are_recorded_and_faults_apply(client: FlaskClient) -> None:
    state: SandboxState = client.application.extensions["sandbox"]
    client.put("/_sandbox/faults/calendly", json={"status": 503})
    answer = client.get("/calendly/scheduled_events/x", headers=AUTH)
    assert answer.status_code == 503
    assert answer.json == {"title": "Service Unavailable", "message": "injected fault"}
    assert [(c.provider, c.method, c.status) for c in state.calls] == [("calendly", "GET", 503)]
