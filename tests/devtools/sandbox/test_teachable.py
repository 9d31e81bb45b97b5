"""The sandbox's Teachable: auth, error and rate-limit shapes, effects, and the webhooks it emits."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import SandboxState
from tests.support.web import json_of

KEY = {"apiKey": "teachable_test_key"}


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=1)


@pytest.fixture
def client(state: SandboxState) -> FlaskClient:
    return create_sandbox_app(state).test_client()


def test_without_an_api_key_the_answer_is_401_with_a_message(client: FlaskClient) -> None:
    response = client.get("/teachable/v1/users")
    assert response.status_code == 401
    assert response.json == {"message": "Invalid API key"}
    assert client.get("/teachable/v1/users", headers={"apikey": "k"}).status_code == 200  # any case


def test_a_rate_limited_answer_carries_teachables_headers(client: FlaskClient) -> None:
    client.put("/_sandbox/faults/teachable", json={"status": 429})
    response = client.get("/teachable/v1/users", headers=KEY)
    assert (response.status_code, response.json) == (429, {"message": "API rate limit exceeded"})
    assert {
        h: response.headers[h]
        for h in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
    } == {
        "RateLimit-Limit": "360",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "1",
    }


def test_users_are_unique_by_email_and_enrolling_twice_is_a_recorded_duplicate(
    client: FlaskClient, state: SandboxState
) -> None:
    user = client.post(
        "/teachable/v1/users", json={"email": "A@example.com", "name": "A"}, headers=KEY
    )
    assert user.status_code == 201
    taken = client.post("/teachable/v1/users", json={"email": "a@example.com"}, headers=KEY)
    assert (taken.status_code, taken.json) == (422, {"message": "Email has already been taken"})
    found = json_of(
        client.get("/teachable/v1/users", query_string={"email": "a@example.com"}, headers=KEY)
    )
    assert [u["id"] for u in found["users"]] == [json_of(user)["id"]]
    assert found["meta"]["total"] == 1
    pair = {"user_id": json_of(user)["id"], "course_id": 7}
    assert client.post("/teachable/v1/enroll", json=pair, headers=KEY).status_code == 204
    assert client.post("/teachable/v1/enroll", json=pair, headers=KEY).status_code == 204
    assert state.summary()["providers"]["teachable"]["duplicates"] == {"enrollment.created": 1}
    detail = json_of(client.get(f"/teachable/v1/users/{json_of(user)['id']}", headers=KEY))
    assert [(c["course_id"], c["is_active_enrollment"]) for c in detail["courses"]] == [(7, True)]
    assert client.post("/teachable/v1/unenroll", json=pair, headers=KEY).status_code == 204
    assert client.post("/teachable/v1/unenroll", json=pair, headers=KEY).status_code == 404
    enrolled = json_of(client.get("/teachable/v1/courses/7/enrollments", headers=KEY))
    assert enrolled["enrollments"] == []


def test_a_sale_emits_the_transaction_webhook_as_a_one_element_array(client: FlaskClient) -> None:
    hook = json_of(
        client.post("/_sandbox/teachable/sales", json={"email": "b@example.com", "course_id": 7})
    )
    delivered = json.loads(hook["body"])
    assert isinstance(delivered, list) and len(delivered) == 1
    envelope = delivered[0]
    assert envelope["type"] == "Transaction.created"
    assert set(envelope) == {"type", "id", "livemode", "created", "hook_event_id", "object"}
    assert envelope["object"]["user"]["email"] == "b@example.com"
    user_id = envelope["object"]["user_id"]
    done = json_of(client.post(f"/_sandbox/teachable/enrollments/{user_id}/7/complete"))
    assert json.loads(done["body"])[0]["object"]["percent_complete"] == 100
    refund = json_of(client.post(f"/_sandbox/teachable/transactions/{envelope['id']}/refund"))
    assert json.loads(refund["body"])[0]["object"]["amount_refunded"] == 4900
