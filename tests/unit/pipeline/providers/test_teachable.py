"""Teachable: the webhook envelope (array or object), its mapping, and enroll/unenroll that look first.

The destination runs against the sandbox's Teachable over real HTTP; its record of side effects
shows whether anything was enrolled twice.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from devtools.sandbox.state import SandboxState
from pipeline.config.load import load_config
from pipeline.config.model import Config
from pipeline.errors import BadPayload, RetryableError
from pipeline.log.events import StoredEvent
from pipeline.providers.base import DeliveryRef, DestinationContext, Verdict
from pipeline.providers.teachable.destination import DESTINATION
from pipeline.providers.teachable.source import SOURCE
from schemas.canonical import validate_canonical
from schemas.contracts.base import check
from tests.support.contexts import destination_context, source_context
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT
from tests.support.stack import CONFIG, ThreadedServer, serve_sandbox

FIXTURES = FIXTURE_ROOT / "teachable"


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[ThreadedServer, SandboxState]]:
    yield from serve_sandbox(5)


@pytest.fixture
def live(
    sandbox: tuple[ThreadedServer, SandboxState],
) -> Iterator[tuple[str, Config, SandboxState]]:
    server, state = sandbox
    state.reset()
    yield server.url, load_config(CONFIG, {"SANDBOX_PORT": str(server.port)}), state


def canonical(raw: bytes, config: Config | None = None) -> dict[str, Any] | Verdict:
    payload = SOURCE.parse(raw)
    found = SOURCE.identify(payload, raw, {})
    event = StoredEvent(
        id=1,
        source="teachable",
        provider="teachable",
        external_id=found.external_id,
        provider_type=found.provider_type,
        lane="payments",
        body=raw,
        headers={},
        received_at=datetime.now(UTC),
        status="verified",
    )
    source = (config or load_config(CONFIG, {"SANDBOX_PORT": "1"})).sources["teachable"]
    ctx = source_context(source)
    return SOURCE.canonicalize(ctx, event, payload, SOURCE.fetch(ctx, event, payload))


def test_an_array_delivery_and_a_bare_object_name_the_same_event() -> None:
    raw = body("Enrollment.completed.json")
    unwrapped = SOURCE.parse(raw)
    assert SOURCE.parse(json.dumps(unwrapped).encode()) == unwrapped
    found = SOURCE.identify(unwrapped, raw, {})
    # the envelope id is the enrollment's; hook_event_id is what names this delivery's event
    assert (found.external_id, found.provider_type) == (
        "Enrollment.completed:12345678",
        "Enrollment.completed",
    )


def test_a_batch_picks_the_one_event_we_act_on_and_refuses_two() -> None:
    completed = json.loads(body("Enrollment.completed.json"))[0]
    user_created = {
        "type": "User.created",
        "id": 5,
        "created": "2026-09-11T08:04:26+00:00",
        "hook_event_id": 6,
        "object": {"id": 5, "email": "x@example.com"},
    }
    assert SOURCE.parse(json.dumps([user_created, completed]).encode()) == completed
    assert SOURCE.parse(json.dumps([user_created]).encode()) == user_created  # stored, then ignored
    with pytest.raises(BadPayload) as refused:
        SOURCE.parse(json.dumps([completed, completed]).encode())
    assert refused.value.code == "batched_events"
    with pytest.raises(BadPayload):
        SOURCE.parse(b"[]")


@pytest.mark.parametrize("name", ["Enrollment.completed.json", "Transaction.created.json"])
def test_the_samples_fit_their_contracts(name: str) -> None:
    payload = SOURCE.parse(body(name))
    contract = SOURCE.contract_for(payload["type"], payload)
    assert contract is not None
    report = check(contract, payload)
    assert (report.missing, report.invalid, report.unknown) == ([], [], [])
    broken = copy.deepcopy(payload)
    del broken["object"]["user_id"]
    contract = SOURCE.contract_for(payload["type"], broken)
    assert contract is not None
    assert check(contract, broken).missing == ["object.user_id"]


def test_a_completed_enrollment_maps_to_enrollment_completed() -> None:
    document = canonical(body("Enrollment.completed.json"))
    assert isinstance(document, dict)
    validate_canonical(document)
    assert (document["type"], document["key"]) == (
        "enrollment.completed",
        "teachable:enrollment:987654321",
    )
    assert document["contact"]["email"] == "student@example.com"
    assert document["contact"]["external_ids"] == {"teachable_user": "73647851"}
    assert document["enrollment"]["course_name"] == "First Aid Training"


def test_a_transaction_is_a_purchase_keyed_by_its_sale_and_a_refund_is_its_own_event() -> None:
    document = canonical(body("Transaction.created.json"))
    assert isinstance(document, dict)
    validate_canonical(document)
    assert (document["type"], document["key"]) == ("purchase.completed", "teachable:sale:99001")
    assert (document["purchase"]["amount"], document["purchase"]["currency"]) == (4900, "usd")
    assert document["purchase"]["items"][0]["product"] == "teachable:pricing_plan:7101"

    refunded = json.loads(body("Transaction.created.json"))
    refunded[0].update(type="Transaction.refunded", hook_event_id=879371999)
    refunded[0]["object"].update(refunded_at="2026-05-20T10:00:00Z", amount_refunded=4900)
    refund = canonical(json.dumps(refunded).encode())
    assert isinstance(refund, dict)
    assert (refund["type"], refund["key"]) == (
        "purchase.refunded",
        "teachable:transaction:88001:refunded",
    )
    # a charge refunded before we processed it grants nothing
    refunded[0]["type"] = "Transaction.created"
    assert canonical(json.dumps(refunded).encode()) == Verdict(
        "ignore", "refunded_before_processing"
    )


def test_a_user_missing_from_the_webhook_is_looked_up(
    live: tuple[str, Config, SandboxState],
) -> None:
    base, config, _ = live
    spec = {"email": "Grace@Example.com", "name": "Grace Hopper", "course_id": 7001}
    hook = requests.post(f"{base}/_sandbox/teachable/sales", json=spec, timeout=5).json()
    payload = json.loads(hook["body"])
    del payload[0]["object"]["user"]
    document = canonical(json.dumps(payload).encode(), config)
    assert isinstance(document, dict)
    assert (document["contact"]["email"], document["contact"]["first_name"]) == (
        "grace@example.com",
        "Grace",
    )


def context(config: Config) -> DestinationContext:
    return destination_context(config.destinations["teachable"], config)


PURCHASE = {
    "type": "purchase.completed",
    "key": "stripe:cs_1",
    "contact": {"email": "Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace"},
    "purchase": {"items": [{"product": "price_course_bundle"}]},
}


def test_enroll_creates_the_user_once_and_never_enrolls_twice(
    live: tuple[str, Config, SandboxState],
) -> None:
    _, config, state = live
    first = DESTINATION.perform(
        context(config), DeliveryRef(1, "teachable.enroll", "enroll", "k", 1), PURCHASE
    )
    retry = DESTINATION.perform(
        context(config), DeliveryRef(1, "teachable.enroll", "enroll", "k", 2), PURCHASE
    )
    assert (first["enrolled"], retry["enrolled"], retry["already"]) == ([7001], [], [7001])
    assert state.summary()["providers"]["teachable"] == {
        "effects": {"user.created": 1, "enrollment.created": 1},
        "duplicates": {},
    }
    posted = [c.path for c in state.calls if c.method == "POST"]
    assert posted == ["/teachable/v1/users", "/teachable/v1/enroll"]


def test_unenroll_removes_only_active_enrollments(live: tuple[str, Config, SandboxState]) -> None:
    _, config, state = live
    unknown = DESTINATION.perform(
        context(config), DeliveryRef(2, "teachable.unenroll", "unenroll", "u", 1), PURCHASE
    )
    assert unknown == {"skipped": "no_such_user"}
    DESTINATION.perform(
        context(config), DeliveryRef(1, "teachable.enroll", "enroll", "k", 1), PURCHASE
    )
    gone = DESTINATION.perform(
        context(config), DeliveryRef(2, "teachable.unenroll", "unenroll", "u", 1), PURCHASE
    )
    again = DESTINATION.perform(
        context(config), DeliveryRef(2, "teachable.unenroll", "unenroll", "u", 2), PURCHASE
    )
    assert (gone["unenrolled"], again["unenrolled"]) == ([7001], [])
    assert state.summary()["providers"]["teachable"]["effects"]["enrollment.disabled"] == 1


def test_a_429_is_retried_after_ratelimit_reset(live: tuple[str, Config, SandboxState]) -> None:
    base, config, _ = live
    requests.put(
        f"{base}/_sandbox/faults/teachable", json={"status": 429}, timeout=5
    ).raise_for_status()
    with pytest.raises(RetryableError) as limited:
        DESTINATION.perform(
            context(config), DeliveryRef(1, "teachable.enroll", "enroll", "k", 1), PURCHASE
        )
    # Teachable sends no Retry-After: the wait comes from RateLimit-Reset (seconds)
    assert (limited.value.http_status, limited.value.retry_after) == (429, 1.0)
