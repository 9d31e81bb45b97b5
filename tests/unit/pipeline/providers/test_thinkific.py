"""Thinkific as a source (topics, contracts, re-reading the API) and its destination, unchanged.

Fetch and canonicalize run against the sandbox's Thinkific over real HTTP; the sandbox's control
helpers create the enrollments and orders, as a student and Thinkific would.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from marshmallow import Schema

from devtools.sandbox.state import SandboxState
from pipeline.config.load import load_config
from pipeline.config.model import Config
from pipeline.errors import BadPayload
from pipeline.log.events import StoredEvent
from pipeline.providers.base import DeliveryRef, Verdict
from pipeline.providers.thinkific.destination import DESTINATION
from pipeline.providers.thinkific.source import SOURCE
from schemas.canonical import validate_canonical
from schemas.contracts.base import check
from tests.support.contexts import destination_context, source_context
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT
from tests.support.stack import CONFIG, ThreadedServer, serve_sandbox

FIXTURES = FIXTURE_ROOT / "thinkific"
KEY = "thinkific_test_key"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def contract(provider_type: str, event: dict[str, Any]) -> type[Schema]:
    found = SOURCE.contract_for(provider_type, event)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[ThreadedServer, SandboxState]]:
    yield from serve_sandbox(3)


@pytest.fixture
def live(sandbox: tuple[ThreadedServer, SandboxState]) -> Iterator[tuple[str, Config]]:
    server, state = sandbox
    state.reset()
    yield server.url, load_config(CONFIG, {"SANDBOX_PORT": str(server.port)})


def stored(event: dict[str, Any]) -> StoredEvent:
    body = json.dumps(event).encode()
    found = SOURCE.identify(event, body, {})
    return StoredEvent(
        id=1,
        source="thinkific",
        provider="thinkific",
        external_id=found.external_id,
        provider_type=found.provider_type,
        lane="enrollments",
        body=body,
        headers={},
        received_at=datetime.now(UTC),
        status="verified",
    )


def process(config: Config, event: dict[str, Any]) -> dict[str, Any] | Verdict:
    ctx = source_context(config.sources["thinkific"])
    fetched = SOURCE.fetch(ctx, stored(event), event)
    return SOURCE.canonicalize(ctx, stored(event), event, fetched)


def helper(base: str, path: str, **spec: Any) -> dict[str, Any]:
    response = requests.post(
        f"{base}/_sandbox/thinkific/{path}", json={"secret": KEY, **spec}, timeout=5
    )
    response.raise_for_status()
    return dict(response.json()["event"])


def test_the_topic_is_resource_dot_action_and_the_envelope_id_names_the_event() -> None:
    found = SOURCE.identify(fixture("order.created.json"), b"", {})
    assert (found.external_id, found.provider_type) == ("20180126172320940835610", "order.created")
    assert SOURCE.lane_for("enrollment.completed") == "enrollments"
    assert SOURCE.lane_for("order.created") == "payments"
    assert SOURCE.lane_for("enrollment.progress") is None  # stored and ignored
    with pytest.raises(BadPayload):
        SOURCE.identify({"id": "1", "resource": "enrollment"}, b"", {})
    with pytest.raises(BadPayload):
        SOURCE.identify([fixture("order.created.json")], b"", {})


@pytest.mark.parametrize(
    "name", ["enrollment.created.json", "enrollment.completed.json", "order.created.json"]
)
def test_the_published_samples_fit_their_contracts(name: str) -> None:
    event = fixture(name)
    report = check(contract(f"{event['resource']}.{event['action']}", event), event)
    assert (report.missing, report.invalid, report.unknown) == ([], [], [])


def test_a_payload_without_its_id_breaks_the_contract_and_new_fields_are_drift() -> None:
    event = fixture("enrollment.completed.json")
    broken = copy.deepcopy(event)
    del broken["payload"]["id"]
    assert check(contract("enrollment.completed", broken), broken).missing == ["payload.id"]
    drifted = copy.deepcopy(event)
    drifted["payload"]["user"]["avatar_url"] = "https://example.com/a.png"
    report = check(contract("enrollment.completed", drifted), drifted)
    assert (report.broken, report.unknown) == (False, ["payload.user.avatar_url"])
    assert SOURCE.default_on_unknown_fields == "warn"


def test_a_completed_enrollment_is_read_back_from_the_api_with_its_user(
    live: tuple[str, Config],
) -> None:
    base, config = live
    created = helper(
        base,
        "enrollments",
        email="Ada@Example.com",
        first_name="Ada",
        last_name="Lovelace",
        course_id=68,
    )
    completed = helper(base, f"enrollments/{created['payload']['id']}/complete")
    completed["payload"].pop("user")  # webhooks are pointers: nothing below may need this

    document = process(config, completed)

    assert isinstance(document, dict)
    validate_canonical(document)
    assert document["type"] == "enrollment.completed"
    assert document["key"] == f"thinkific:enrollment:{created['payload']['id']}"
    assert document["contact"]["email"] == "ada@example.com"
    assert (document["contact"]["first_name"], document["contact"]["last_name"]) == (
        "Ada",
        "Lovelace",
    )
    assert document["enrollment"]["course_id"] == "68"
    assert document["enrollment"]["completed"] is True


def test_created_and_completed_are_separate_facts_for_the_ordering_guard(
    live: tuple[str, Config],
) -> None:
    base, config = live
    created = helper(base, "enrollments", email="a@example.com", course_id=5)
    ctx = source_context(config.sources["thinkific"])
    fetched = SOURCE.fetch(ctx, stored(created), created)
    assert fetched is not None
    assert fetched.object_key == f"thinkific:enrollment:{created['payload']['id']}:created"
    assert fetched.version > 0


def test_a_completion_the_api_does_not_confirm_or_a_deleted_enrollment_is_ignored(
    live: tuple[str, Config],
) -> None:
    base, config = live
    created = helper(base, "enrollments", email="a@example.com", course_id=5)
    claimed = copy.deepcopy(created)
    claimed["action"] = "completed"
    assert process(config, claimed) == Verdict("ignore", "enrollment_not_completed")
    claimed["payload"]["id"] = 999_999
    assert process(config, claimed) == Verdict("ignore", "enrollment_deleted")


def test_an_order_becomes_a_purchase_of_thinkific_products(live: tuple[str, Config]) -> None:
    base, config = live
    order = helper(base, "orders", email="buyer@example.com", product_id=4101, amount_cents=12900)
    document = process(config, order)
    assert isinstance(document, dict)
    validate_canonical(document)
    assert document["type"] == "purchase.completed"
    assert document["key"] == f"thinkific:order:{order['payload']['id']}"
    assert document["purchase"]["amount"] == 12900
    assert document["purchase"]["currency"] == "usd"  # the source's `currency` option
    assert [i["product"] for i in document["purchase"]["items"]] == ["thinkific:product:4101"]


def test_the_destination_still_enrolls_once_and_revokes(live: tuple[str, Config]) -> None:
    _, config = live
    event = {
        "type": "purchase.completed",
        "key": "stripe:cs_1",
        "contact": {"email": "b@example.com"},
        "purchase": {"items": [{"product": "price_1PgafmB7WZ01zgkW6dKueIc5"}]},
    }
    ctx = destination_context(config.destinations["courses"], config)
    first = DESTINATION.perform(ctx, DeliveryRef(1, "courses.enroll", "enroll", "k", 1), event)
    again = DESTINATION.perform(ctx, DeliveryRef(1, "courses.enroll", "enroll", "k", 2), event)
    assert first["enrollments"] == again["enrollments"]
    revoked = DESTINATION.perform(
        ctx, DeliveryRef(2, "courses.unenroll", "unenroll", "k2", 1), event
    )
    assert revoked["revoked"] == first["enrollments"]
