"""The Stripe emulator: includable line items paged as Stripe pages them, and subscriptions in
Stripe's default flow (incomplete, then active when the first invoice is paid)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import SandboxState
from pipeline.providers.stripe.source import SOURCE
from schemas.contracts.base import check
from tests.support.web import json_of

AUTH = {"Authorization": "Bearer sk_test_sandbox"}


@pytest.fixture
def client() -> FlaskClient:
    return create_sandbox_app(SandboxState(seed=5)).test_client()


def control(client: FlaskClient, path: str, body: Any) -> Any:
    answer = client.post(f"/_sandbox/stripe/{path}", json=body)
    assert answer.status_code == 200
    return json_of(answer)


def cart_of(client: FlaskClient, count: int) -> str:
    items = [{"price": f"price_cart_{n:02d}", "amount": 100} for n in range(count)]
    bought = control(client, "purchases", {"email": "cart@example.com", "items": items})
    return str(bought["session"])


def test_line_items_appear_only_when_expanded_and_then_only_their_first_page(
    client: FlaskClient,
) -> None:
    session_id = cart_of(client, 12)
    plain = json_of(client.get(f"/stripe/v1/checkout/sessions/{session_id}", headers=AUTH))
    assert "line_items" not in plain
    expanded = json_of(
        client.get(f"/stripe/v1/checkout/sessions/{session_id}?expand[]=line_items", headers=AUTH)
    )
    assert len(expanded["line_items"]["data"]) == 10 and expanded["line_items"]["has_more"]
    assert expanded["amount_total"] == 1200


def test_the_line_items_list_pages_with_starting_after_and_refuses_a_limit_over_100(
    client: FlaskClient,
) -> None:
    session_id = cart_of(client, 12)
    path = f"/stripe/v1/checkout/sessions/{session_id}/line_items"
    first = json_of(client.get(f"{path}?limit=5", headers=AUTH))
    assert first["object"] == "list" and len(first["data"]) == 5 and first["has_more"]
    rest = json_of(
        client.get(f"{path}?limit=100&starting_after={first['data'][-1]['id']}", headers=AUTH)
    )
    assert len(rest["data"]) == 7 and rest["has_more"] is False
    prices = [item["price"]["id"] for item in first["data"] + rest["data"]]
    assert prices == [f"price_cart_{n:02d}" for n in range(12)]
    refused = client.get(f"{path}?limit=101", headers=AUTH)
    assert refused.status_code == 400 and json_of(refused)["error"]["param"] == "limit"


def test_an_ignored_expansion_answers_as_if_it_had_not_been_asked_for(
    client: FlaskClient,
) -> None:
    session_id = cart_of(client, 1)
    control(client, "expansions/ignore", {"paths": ["line_items"]})
    found = json_of(
        client.get(f"/stripe/v1/checkout/sessions/{session_id}?expand[]=line_items", headers=AUTH)
    )
    assert "line_items" not in found


def test_a_subscription_starts_incomplete_and_turns_active_when_its_first_invoice_is_paid(
    client: FlaskClient,
) -> None:
    created = control(client, "subscriptions", {"email": "sub@example.com", "at": 1_760_000_000})
    event = created["event"]
    assert event["type"] == "customer.subscription.created" and event["created"] == 1_760_000_000
    assert event["data"]["object"]["status"] == "incomplete"
    invoice = json_of(client.get(f"/stripe/v1/invoices/{created['invoice']}", headers=AUTH))
    assert (invoice["billing_reason"], invoice["status"]) == ("subscription_create", "open")
    paid = control(client, f"subscriptions/{created['subscription']}/pay", {"at": 1_760_000_060})
    events = paid["events"]
    assert events["invoice.paid"]["data"]["object"]["status"] == "paid"
    updated = events["customer.subscription.updated"]["data"]
    assert updated["object"]["status"] == "active"
    assert updated["previous_attributes"] == {"status": "incomplete"}
    sub = json_of(
        client.get(
            f"/stripe/v1/subscriptions/{created['subscription']}?expand[]=customer", headers=AUTH
        )
    )
    assert sub["status"] == "active" and sub["customer"]["email"] == "sub@example.com"
    # every webhook it sends keeps the contract Stripe sources check
    for sent in (event, *events.values()):
        report = check(SOURCE.contracts[sent["type"]], sent)
        assert (report.missing, report.invalid, report.unknown) == ([], [], [])
