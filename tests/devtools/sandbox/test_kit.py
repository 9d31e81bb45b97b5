"""The Kit emulator answers as API v4 does and sends the webhooks Kit would send."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import Fault, SandboxState
from pipeline.config.model import SourceConfig
from pipeline.providers.kit.source import SOURCE as KIT_SOURCE
from pipeline.providers.kit.source import KitSource
from pipeline.signatures.base import SignedRequest
from schemas.contracts.base import check
from tests.support.contexts import source_config
from tests.support.web import json_of

AUTH = {"X-Kit-Api-Key": "kit_test_api_key"}
SECRET = "kit_whsec_current"


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=2)


@pytest.fixture
def client(state: SandboxState) -> FlaskClient:
    return create_sandbox_app(state).test_client()


def subscribe(client: FlaskClient, email: str = "ada@example.com", **extra: str) -> Any:
    return client.post("/kit/v4/subscribers", json={"email_address": email, **extra}, headers=AUTH)


def test_without_a_key_the_error_is_kits_errors_array(client: FlaskClient) -> None:
    response = client.get("/kit/v4/subscribers")
    assert response.status_code == 401
    assert response.json == {"errors": ["The access token is invalid"]}
    assert (
        client.get("/kit/v4/tags", headers={"Authorization": "Bearer oauth-token"}).status_code
        == 200
    )


def test_a_429_is_plain_text_retry_later_without_retry_after(
    client: FlaskClient, state: SandboxState
) -> None:
    state.faults["kit"] = Fault(status=429)
    response = subscribe(client)
    assert (response.status_code, response.mimetype, response.get_data(as_text=True)) == (
        429,
        "text/plain",
        "Retry later",
    )
    assert "Retry-After" not in response.headers


def test_create_is_an_upsert_that_never_changes_the_state(
    client: FlaskClient, state: SandboxState
) -> None:
    created = subscribe(client, first_name="Ada")
    assert created.status_code == 201 and json_of(created)["subscriber"]["state"] == "active"
    sub_id = json_of(created)["subscriber"]["id"]
    assert client.post(f"/kit/v4/subscribers/{sub_id}/unsubscribe", headers=AUTH).status_code == 204
    again = subscribe(client, "ADA@example.com", first_name="Ada B")
    assert again.status_code == 200
    assert (json_of(again)["subscriber"]["id"], json_of(again)["subscriber"]["state"]) == (
        sub_id,
        "cancelled",
    )
    assert subscribe(client, "not-an-address").json == {"errors": ["Email address is invalid"]}
    assert state.summary()["providers"]["kit"] == {
        "effects": {"subscriber.created": 1, "subscriber.unsubscribed": 1},
        "duplicates": {},
    }


def test_the_subscriber_list_shows_active_ones_unless_asked(client: FlaskClient) -> None:
    sub_id = json_of(subscribe(client))["subscriber"]["id"]
    client.post(f"/kit/v4/subscribers/{sub_id}/unsubscribe", headers=AUTH)
    query = "/kit/v4/subscribers?email_address=ada@example.com"
    assert json_of(client.get(query, headers=AUTH))["subscribers"] == []
    found = json_of(client.get(f"{query}&status=all", headers=AUTH))
    assert [s["id"] for s in found["subscribers"]] == [sub_id]
    assert found["pagination"]["has_next_page"] is False
    assert client.post("/kit/v4/subscribers/424242/unsubscribe", headers=AUTH).status_code == 404


def test_tags_page_with_cursors_and_a_known_name_answers_200(
    client: FlaskClient, state: SandboxState
) -> None:
    for name in ("a", "b", "c"):
        assert client.post("/kit/v4/tags", json={"name": name}, headers=AUTH).status_code == 201
    existing = client.post("/kit/v4/tags", json={"name": "b"}, headers=AUTH)
    assert existing.status_code == 200
    first = json_of(client.get("/kit/v4/tags?per_page=2", headers=AUTH))
    assert [t["name"] for t in first["tags"]] == ["a", "b"] and first["pagination"]["has_next_page"]
    cursor = first["pagination"]["end_cursor"]
    rest = json_of(client.get(f"/kit/v4/tags?per_page=2&after={cursor}", headers=AUTH))
    assert [t["name"] for t in rest["tags"]] == ["c"] and not rest["pagination"]["has_next_page"]
    assert client.post("/kit/v4/tags", json={"name": " "}, headers=AUTH).json == {
        "errors": ["Name can't be blank"]
    }
    assert state.summary()["providers"]["kit"]["effects"] == {"tag.created": 3}


def test_tagging_is_idempotent_in_kit_and_needs_an_existing_subscriber(
    client: FlaskClient, state: SandboxState
) -> None:
    tag_id = json_of(client.post("/kit/v4/tags", json={"name": "vip"}, headers=AUTH))["tag"]["id"]
    path = f"/kit/v4/tags/{tag_id}/subscribers"
    assert (
        client.post(path, json={"email_address": "ada@example.com"}, headers=AUTH).status_code
        == 404
    )
    subscribe(client)
    assert (
        client.post(path, json={"email_address": "ada@example.com"}, headers=AUTH).status_code
        == 201
    )
    assert (
        client.post(path, json={"email_address": "ada@example.com"}, headers=AUTH).status_code
        == 200
    )
    assert (
        client.post(
            "/kit/v4/tags/9999/subscribers", json={"email_address": "ada@example.com"}, headers=AUTH
        ).status_code
        == 404
    )
    assert state.summary()["providers"]["kit"]["effects"]["subscriber.tagged"] == 1
    assert state.summary()["providers"]["kit"]["duplicates"] == {}


def source() -> SourceConfig:
    return source_config(
        KIT_SOURCE, signing_secrets=(SECRET,), on_unknown_fields="reject", max_body_bytes=100_000
    )


def test_a_control_delivery_is_signed_like_kit_and_meets_the_contract(client: FlaskClient) -> None:
    made = json_of(
        client.post(
            "/_sandbox/kit/webhooks",
            json={
                "event": "subscriber.tag_added",
                "email": "ada@example.com",
                "tag": "vip",
                "secret": SECRET,
            },
        )
    )
    body = made["body"].encode()
    request = SignedRequest(body, made["headers"], {}, time.time())
    assert KIT_SOURCE.signature.verify(source(), request).secret_index == 0
    payload = json.loads(body)
    report = check(KitSource.contracts["subscriber.tag_added"], payload)
    assert (report.missing, report.invalid, report.unknown) == ([], [], [])
    assert payload["events"][0]["data"]["tag"]["name"] == "vip"
    tagged = json_of(client.get("/kit/v4/tags", headers=AUTH))["tags"]
    assert [t["name"] for t in tagged] == ["vip"]


def test_control_helpers_change_the_account_and_send_legacy_or_bulk_bodies(
    client: FlaskClient,
) -> None:
    legacy = json_of(
        client.post(
            "/_sandbox/kit/webhooks",
            json={"event": "subscriber.unsubscribed", "email": "ada@example.com", "legacy": True},
        )
    )
    assert json.loads(legacy["body"])["subscriber"]["state"] == "cancelled"
    assert "X-Kit-Signature" not in legacy["headers"]
    bulk = json_of(
        client.post(
            "/_sandbox/kit/webhooks",
            json={"event": "subscriber.activated", "emails": ["a@example.com", "b@example.com"]},
        )
    )
    events = json.loads(bulk["body"])["events"]
    assert [e["data"]["subscriber"]["email_address"] for e in events] == [
        "a@example.com",
        "b@example.com",
    ]
    assert len({e["id"] for e in events}) == 2
    assert (
        client.post(
            "/_sandbox/kit/webhooks", json={"event": "form_subscribe", "email": "x"}
        ).status_code
        == 400
    )
