"""The sandbox's Kajabi: OAuth, JSON:API documents and errors, grants and revokes, the purchase hook."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import SandboxState
from tests.support.web import json_of

JSON_API = "application/vnd.api+json"


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=1)


@pytest.fixture
def client(state: SandboxState) -> FlaskClient:
    return create_sandbox_app(state).test_client()


def bearer(client: FlaskClient) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"}
    token = json_of(client.post("/kajabi/v1/oauth/token", data=form))
    assert (token["token_type"], token["expires_in"]) == ("Bearer", 7200)
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_the_token_endpoint_and_the_api_refuse_like_kajabi(client: FlaskClient) -> None:
    refused = client.post("/kajabi/v1/oauth/token", data={"grant_type": "client_credentials"})
    assert (refused.status_code, refused.json) == (400, {"error": "invalid_request"})
    unauthorized = client.get("/kajabi/v1/contacts")
    assert unauthorized.status_code == 401
    assert unauthorized.mimetype == JSON_API
    assert json.loads(unauthorized.data)["errors"][0]["status"] == "401"


def contact(client: FlaskClient, auth: dict[str, str], email: str, site: str = "2") -> Any:
    body = {
        "data": {
            "type": "contacts",
            "attributes": {"name": "Ada", "email": email},
            "relationships": {"site": {"data": {"type": "sites", "id": site}}},
        }
    }
    return client.post("/kajabi/v1/contacts", json=body, headers=auth)


def test_contacts_need_the_site_and_a_new_email(client: FlaskClient) -> None:
    auth = bearer(client)
    assert contact(client, auth, "a@example.com", site="99").status_code == 400
    created = contact(client, auth, "a@example.com")
    assert created.status_code == 201
    taken = contact(client, auth, "A@example.com")
    assert taken.status_code == 422
    assert json.loads(taken.data)["errors"][0]["source"] == {"pointer": "/data/attributes/email"}
    found = client.get(
        "/kajabi/v1/contacts", query_string={"filter[search]": "example"}, headers=auth
    )
    assert [r["attributes"]["email"] for r in json.loads(found.data)["data"]] == ["a@example.com"]


def test_granting_a_held_offer_is_a_duplicate_and_revoking_affects_active_offers_only(
    client: FlaskClient, state: SandboxState
) -> None:
    auth = bearer(client)
    contact_id = json.loads(contact(client, auth, "a@example.com").data)["data"]["id"]
    grant = {
        "data": [{"type": "offers", "id": "9001"}],
        "meta": {"send_customer_welcome_email": False},
    }
    path = f"/kajabi/v1/contacts/{contact_id}/relationships/offers"
    assert json.loads(client.post(path, json=grant, headers=auth).data)["data"] == grant["data"]
    client.post(path, json=grant, headers=auth)
    assert state.summary()["providers"]["kajabi"]["duplicates"] == {"offer.granted": 1}
    assert state.store("kajabi", "emails") == {}
    customer = json.loads(
        client.get("/kajabi/v1/customers", query_string={"filter[search]": "a@"}, headers=auth).data
    )["data"][0]
    offers = f"/kajabi/v1/customers/{customer['id']}/relationships/offers"
    revoke = {"data": [{"type": "offers", "id": "9001"}]}
    assert json.loads(client.delete(offers, json=revoke, headers=auth).data)["data"] == []
    client.delete(offers, json=revoke, headers=auth)
    assert state.summary()["providers"]["kajabi"]["effects"]["offer.revoked"] == 1
    assert client.delete(offers, json={"data": "9001"}, headers=auth).status_code == 400


def test_a_purchase_emits_kajabis_hook(client: FlaskClient) -> None:
    made = json_of(
        client.post("/_sandbox/kajabi/purchases", json={"email": "b@example.com", "offer_id": "77"})
    )
    hook = json.loads(made["body"])
    assert (hook["event"], hook["id"]) == ("purchase", made["purchase"])
    assert [r["type"] for r in hook["payload"]] == ["purchases", "offers", "customers"]
    purchase = client.get(f"/kajabi/v1/purchases/{made['purchase']}", headers=bearer(client))
    assert json.loads(purchase.data)["data"]["relationships"]["offer"]["data"]["id"] == "77"
