"""The ActiveCampaign emulator answers as API v3 does and sends the webhooks it would send."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import Fault, SandboxState
from pipeline.providers.activecampaign.source import SOURCE
from schemas.contracts.base import check
from tests.support.web import json_of

AUTH = {"Api-Token": "ac_test_api_token"}
API = "/activecampaign/api/3"


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=4)


@pytest.fixture
def client(state: SandboxState) -> FlaskClient:
    return create_sandbox_app(state).test_client()


def sync(client: FlaskClient, email: str = "jane@example.com") -> Any:
    return client.post(
        f"{API}/contact/sync", json={"contact": {"email": email, "firstName": "Jane"}}, headers=AUTH
    )


def test_a_missing_token_is_a_403_message_and_a_storm_a_429(
    client: FlaskClient, state: SandboxState
) -> None:
    refused = client.get(f"{API}/contacts")
    assert refused.status_code == 403 and set(json_of(refused)) == {"message"}
    state.faults["activecampaign"] = Fault(status=429, retry_after=1)
    throttled = client.get(f"{API}/contacts", headers=AUTH)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"


def test_sync_creates_then_updates_and_validation_errors_are_an_errors_array(
    client: FlaskClient, state: SandboxState
) -> None:
    created = sync(client)
    assert created.status_code == 201 and json_of(created)["contact"]["firstName"] == "Jane"
    updated = sync(client, "JANE@example.com")
    assert (
        updated.status_code == 200
        and json_of(updated)["contact"]["id"] == json_of(created)["contact"]["id"]
    )
    invalid = sync(client, "nope")
    assert invalid.status_code == 422
    assert json_of(invalid)["errors"][0]["title"] == "Contact Email Address is not valid."
    found = json_of(client.get(f"{API}/contacts?email=jane@example.com", headers=AUTH))
    assert [c["id"] for c in found["contacts"]] == [json_of(created)["contact"]["id"]]
    assert state.summary()["providers"]["activecampaign"]["effects"] == {"contact.created": 1}


def test_tags_search_is_contains_weighted_and_a_duplicate_name_is_refused(
    client: FlaskClient,
) -> None:
    for name in ("vip-gold", "vip"):
        assert (
            client.post(
                f"{API}/tags", json={"tag": {"tag": name, "tagType": "contact"}}, headers=AUTH
            ).status_code
            == 201
        )
    duplicate = client.post(f"{API}/tags", json={"tag": {"tag": "vip"}}, headers=AUTH)
    assert duplicate.status_code == 422 and "errors" in json_of(duplicate)
    found = json_of(client.get(f"{API}/tags?search=vip&orders[search]=weight", headers=AUTH))
    assert [t["tag"] for t in found["tags"]] == ["vip", "vip-gold"] and found["meta"][
        "total"
    ] == "2"


def test_attaching_a_tag_twice_is_a_duplicate_effect(
    client: FlaskClient, state: SandboxState
) -> None:
    contact = json_of(sync(client))["contact"]["id"]
    made = client.post(f"{API}/tags", json={"tag": {"tag": "vip"}}, headers=AUTH)
    tag = json_of(made)["tag"]["id"]
    link = {"contactTag": {"contact": contact, "tag": tag}}
    assert client.post(f"{API}/contactTags", json=link, headers=AUTH).status_code == 201
    assert client.post(f"{API}/contactTags", json=link, headers=AUTH).status_code == 201
    assert state.summary()["providers"]["activecampaign"]["duplicates"] == {
        "contact_tag.created": 1
    }
    links = client.get(f"{API}/contacts/{contact}/contactTags", headers=AUTH)
    listed = json_of(links)["contactTags"]
    assert [t["tag"] for t in listed] == [tag, tag]
    missing = client.post(
        f"{API}/contactTags", json={"contactTag": {"contact": contact, "tag": "999"}}, headers=AUTH
    )
    assert missing.status_code == 404 and missing.json == {
        "message": "No Result found for Tag with id 999"
    }


def test_list_status_counts_changes_only(client: FlaskClient, state: SandboxState) -> None:
    contact = json_of(sync(client))["contact"]["id"]
    for status in ("1", "1", "2", "2"):
        body = {"contactList": {"list": "1", "contact": contact, "status": status}}
        response = client.post(f"{API}/contactLists", json=body, headers=AUTH)
        assert response.status_code == 200
        assert json_of(response)["contactList"]["status"] == int(status)
    effects = state.summary()["providers"]["activecampaign"]
    assert effects["effects"] == {
        "contact.created": 1,
        "contact_list.subscribed": 1,
        "contact_list.unsubscribed": 1,
    }
    assert effects["duplicates"] == {}
    unknown = client.post(
        f"{API}/contactLists",
        json={"contactList": {"list": "1", "contact": "77", "status": 2}},
        headers=AUTH,
    )
    assert unknown.status_code == 404 and "message" in json_of(unknown)


def test_a_contacts_list_memberships_show_each_lists_status(client: FlaskClient) -> None:
    contact = json_of(sync(client))["contact"]["id"]
    path = f"{API}/contacts/{contact}/contactLists"
    assert json_of(client.get(path, headers=AUTH)) == {"contactLists": []}
    for list_id, status in (("1", "1"), ("3", "2")):
        body = {"contactList": {"list": list_id, "contact": contact, "status": status}}
        client.post(f"{API}/contactLists", json=body, headers=AUTH)
    listed = json_of(client.get(path, headers=AUTH))["contactLists"]
    assert [(m["list"], m["status"], m["contact"]) for m in listed] == [
        ("1", "1", contact),
        ("3", "2", contact),
    ]
    missing = client.get(f"{API}/contacts/77/contactLists", headers=AUTH)
    assert missing.status_code == 404 and "message" in json_of(missing)


@pytest.mark.parametrize("kind", ["subscribe", "unsubscribe", "contact_tag_added"])
def test_control_webhooks_meet_the_sources_contract_and_change_the_account(
    client: FlaskClient, kind: str
) -> None:
    spec = {"type": kind, "email": "jane@example.com", "first_name": "Jane", "tag": "vip"}
    made = json_of(client.post("/_sandbox/activecampaign/webhooks", json=spec))
    payload = SOURCE.parse(made["body"].encode())
    report = check(SOURCE.contracts[kind], payload)
    assert (report.missing, report.invalid, report.unknown) == ([], [], [])
    assert payload["contact"]["email"] == "jane@example.com"
    contact = payload["contact"]["id"]
    if kind == "contact_tag_added":
        assert payload["tag"] == "vip" and payload["contact"]["tags"] == "vip"
    else:
        lists = client.application.extensions["sandbox"].store("activecampaign", "contact_lists")
        assert lists[(contact, "1")] == ("1" if kind == "subscribe" else "2")
