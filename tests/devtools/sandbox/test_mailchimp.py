"""The Mailchimp emulator: the member API our destination uses, and the audience webhooks it sends."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from flask.testing import FlaskClient

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import Fault, SandboxState
from pipeline.providers.mailchimp.source import SOURCE
from schemas.contracts.base import check
from tests.support.web import json_of

KEY = "0123456789abcdef0123456789abcdef-us1"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"any:{KEY}".encode()).decode()}
EMAIL = "Reader@Example.com"
HASH = hashlib.md5(EMAIL.lower().encode(), usedforsecurity=False).hexdigest()


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=1)


@pytest.fixture
def client(state: SandboxState) -> FlaskClient:
    return create_sandbox_app(state).test_client()


def hook(client: FlaskClient, kind: str, **spec: str) -> dict[str, Any]:
    response = client.post(
        f"/_sandbox/mailchimp/lists/list0001/webhooks/{kind}", json={"email": EMAIL, **spec}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert json_of(response)["content_type"] == "application/x-www-form-urlencoded"
    parsed: dict[str, Any] = SOURCE.parse(json_of(response)["body"].encode())
    return parsed


def member(client: FlaskClient) -> dict[str, Any]:
    response = client.get(f"/mailchimp/3.0/lists/list0001/members/{HASH}", headers=AUTH)
    assert response.status_code == 200
    found: dict[str, Any] = json_of(response)
    return found


@pytest.mark.parametrize("kind", ["subscribe", "unsubscribe", "cleaned", "profile"])
def test_each_webhook_meets_the_sources_contract_exactly(client: FlaskClient, kind: str) -> None:
    payload = hook(client, kind, first_name="Ada", last_name="Reader")
    report = check(SOURCE.contracts[kind], payload)
    assert (report.missing, report.invalid, report.unknown) == ([], [], [])
    assert payload["type"] == kind


def test_a_subscribe_webhook_carries_the_member_and_changes_it(client: FlaskClient) -> None:
    payload = hook(client, "subscribe", first_name="Ada", fired_at="2026-01-02 03:04:05")
    assert payload["fired_at"] == "2026-01-02 03:04:05"
    data = payload["data"]
    assert isinstance(data, dict)
    assert (data["id"], data["list_id"], data["email"]) == (HASH, "list0001", EMAIL)
    assert data["merges"]["FNAME"] == "Ada"
    assert member(client)["status"] == "subscribed"


def test_unsubscribe_and_cleaned_change_the_members_status(client: FlaskClient) -> None:
    hook(client, "subscribe")
    payload = hook(client, "unsubscribe", action="delete")
    assert payload["data"]["action"] == "delete"
    assert member(client)["status"] == "unsubscribed"
    hook(client, "cleaned")
    assert member(client)["status"] == "cleaned"


def test_an_unknown_webhook_type_is_a_problem_details_400(client: FlaskClient) -> None:
    response = client.post("/_sandbox/mailchimp/lists/l/webhooks/upemail", json={"email": EMAIL})
    assert response.status_code == 400 and json_of(response)["title"] == "Invalid Resource"


def test_the_member_api_upserts_and_tags_with_its_real_answers(
    client: FlaskClient, state: SandboxState
) -> None:
    path = f"/mailchimp/3.0/lists/list0001/members/{HASH}"
    body = {"email_address": EMAIL, "status_if_new": "subscribed"}
    assert client.put(path, json=body, headers=AUTH).status_code == 200
    assert client.put(path, json=body, headers=AUTH).status_code == 200
    tags = {"tags": [{"name": "vip", "status": "active"}], "is_syncing": False}
    assert client.post(f"{path}/tags", json=tags, headers=AUTH).status_code == 204
    assert member(client)["tags"] == ["vip"]
    effects = state.summary()["providers"]["mailchimp"]
    assert effects["effects"]["member.created"] == 1 and effects["duplicates"] == {}


def test_no_key_is_a_401_and_a_storm_is_a_429_without_retry_after(
    client: FlaskClient, state: SandboxState
) -> None:
    unauthorized = client.get(f"/mailchimp/3.0/lists/list0001/members/{HASH}")
    assert unauthorized.status_code == 401 and unauthorized.mimetype == "application/problem+json"
    state.faults["mailchimp"] = Fault(status=429)
    throttled = client.get(f"/mailchimp/3.0/lists/list0001/members/{HASH}", headers=AUTH)
    assert throttled.status_code == 429 and "Retry-After" not in throttled.headers
    assert json_of(throttled)["title"] == "Too Many Requests"
