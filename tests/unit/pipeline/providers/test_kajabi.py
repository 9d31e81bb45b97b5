"""Kajabi: the purchase hook (JSON:API resources), the cached OAuth token, offers granted once.

The client runs against the sandbox's Kajabi over real HTTP. The token cache is a dict standing in
for Redis (the integration test uses the real one).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import redis
import requests
from marshmallow import Schema

from devtools.sandbox.state import SandboxState
from pipeline.config.load import load_config
from pipeline.config.model import Config
from pipeline.errors import ConfigurationError
from pipeline.log.events import StoredEvent
from pipeline.providers.base import DeliveryRef, DestinationContext, Verdict
from pipeline.providers.kajabi.destination import DESTINATION
from pipeline.providers.kajabi.source import SOURCE
from schemas.canonical import validate_canonical
from schemas.contracts.base import check
from tests.support.contexts import destination_context, source_context
from tests.support.fixtures import FIXTURES
from tests.support.stack import CONFIG, ThreadedServer, serve_sandbox

HOOK = json.loads((FIXTURES / "kajabi" / "purchase.json").read_text())
GRANT = {
    "type": "purchase.completed",
    "key": "stripe:cs_9",
    "contact": {"email": "Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace"},
    "purchase": {"items": [{"product": "price_course_bundle"}]},
}


class Cache(dict[str, Any]):
    """The three Redis calls the token cache makes."""

    def set(self, key: str, value: str, ex: int) -> None:
        self[key] = value.encode()
        self.ttl = ex

    def delete(self, key: str) -> None:
        self.pop(key, None)


def as_redis(cache: Cache) -> redis.Redis:
    """The dict where a context carries a Redis: it answers the only calls the token cache makes."""
    return cast("redis.Redis", cache)


def contract(payload: dict[str, Any]) -> type[Schema]:
    found = SOURCE.contract_for("purchase", payload)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[ThreadedServer, SandboxState]]:
    yield from serve_sandbox(9)


@pytest.fixture
def live(
    sandbox: tuple[ThreadedServer, SandboxState],
) -> Iterator[tuple[str, Config, SandboxState]]:
    server, state = sandbox
    state.reset()
    yield server.url, load_config(CONFIG, {"SANDBOX_PORT": str(server.port)}), state


def stored(hook: dict[str, Any]) -> StoredEvent:
    raw = json.dumps(hook).encode()
    found = SOURCE.identify(hook, raw, {})
    return StoredEvent(
        id=1,
        source="kajabi",
        provider="kajabi",
        external_id=found.external_id,
        provider_type=found.provider_type,
        lane="payments",
        body=raw,
        headers={},
        received_at=datetime.now(UTC),
        status="verified",
    )


def canonical(
    hook: dict[str, Any], config: Config, cache: Cache | None = None
) -> dict[str, Any] | Verdict:
    ctx = source_context(config.sources["kajabi"], redis=as_redis(cache or Cache()))
    return SOURCE.canonicalize(ctx, stored(hook), hook, SOURCE.fetch(ctx, stored(hook), hook))


def test_the_hook_is_named_by_event_and_resource_and_fits_its_contract() -> None:
    found = SOURCE.identify(HOOK, b"", {})
    assert (found.external_id, found.provider_type) == ("purchase:2143", "purchase")
    assert SOURCE.lane_for("purchase") == "payments"
    assert SOURCE.lane_for("form_submission") is None
    report = check(contract(HOOK), HOOK)
    assert (report.missing, report.invalid, report.unknown) == ([], [], [])


def test_each_resource_is_checked_against_the_contract_of_its_type() -> None:
    hook = copy.deepcopy(HOOK)
    del hook["payload"][2]["attributes"]["email"]
    hook["payload"][0]["attributes"]["new_attribute"] = 1
    report = check(contract(hook), hook)
    assert (report.missing, report.unknown) == (
        ["payload.2.attributes.email"],
        ["payload.0.attributes.new_attribute"],
    )
    without_customer = {**HOOK, "payload": HOOK["payload"][:2]}
    assert check(contract(without_customer), without_customer).invalid


def test_a_purchase_becomes_purchase_completed_of_its_offer(
    live: tuple[str, Config, SandboxState],
) -> None:
    _, config, _ = live
    offline = {**config.sources["kajabi"].options, "client_id": None, "client_secret": None}
    source = replace(config.sources["kajabi"], options=offline)
    ctx = source_context(source, redis=as_redis(Cache()))
    assert SOURCE.fetch(ctx, stored(HOOK), HOOK) is None  # without credentials the hook is enough
    document = SOURCE.canonicalize(ctx, stored(HOOK), HOOK, None)
    assert isinstance(document, dict)
    validate_canonical(document)
    assert (document["type"], document["key"]) == ("purchase.completed", "kajabi:purchase:2143")
    assert document["purchase"]["items"] == [
        {"product": "kajabi:offer:9002", "name": "Kajabi Test Offer", "quantity": 1}
    ]
    assert (document["purchase"]["amount"], document["purchase"]["currency"]) == (1000, "usd")
    assert document["contact"]["external_ids"] == {
        "kajabi_customer": "318",
        "kajabi_contact": "411",
    }


def test_with_credentials_the_purchase_is_reread_and_a_deactivated_one_ignored(
    live: tuple[str, Config, SandboxState],
) -> None:
    base, config, _ = live
    made = requests.post(
        f"{base}/_sandbox/kajabi/purchases",
        timeout=5,
        json={"email": "b@example.com", "offer_id": "9002"},
    ).json()
    hook = json.loads(made["body"])
    assert isinstance(canonical(hook, config), dict)
    requests.post(f"{base}/_sandbox/kajabi/purchases/{made['purchase']}/deactivate", timeout=5)
    assert canonical(hook, config) == Verdict("ignore", "purchase_deactivated")


def context(config: Config, cache: Cache) -> DestinationContext:
    return destination_context(config.destinations["kajabi"], config, redis=as_redis(cache))


def perform(config: Config, cache: Cache, verb: str, attempt: int = 1) -> dict[str, Any]:
    return DESTINATION.perform(
        context(config, cache), DeliveryRef(1, f"kajabi.{verb}", verb, "k", attempt), GRANT
    )


def test_an_offer_is_granted_once_with_one_token_and_no_welcome_email(
    live: tuple[str, Config, SandboxState],
) -> None:
    _, config, state = live
    cache = Cache()
    first, retry = perform(config, cache, "enroll"), perform(config, cache, "enroll", 2)
    assert (first["granted"], retry["granted"], retry["already"]) == (["9001"], [], ["9001"])
    effects = state.summary()["providers"]["kajabi"]
    assert effects == {
        "effects": {"token.issued": 1, "contact.created": 1, "offer.granted": 1},
        "duplicates": {},
    }
    assert 0 < cache.ttl <= 7200 - 60  # cached until a minute before it expires
    assert state.store("kajabi", "emails") == {}  # send_welcome_email = false in the config
    grant = next(c for c in state.calls if c.method == "POST" and "relationships/offers" in c.path)
    assert grant.status == 200


def test_revoke_takes_back_only_what_is_held(live: tuple[str, Config, SandboxState]) -> None:
    _, config, state = live
    cache = Cache()
    assert perform(config, cache, "unenroll") == {"skipped": "no_such_customer"}
    perform(config, cache, "enroll")
    gone, again = perform(config, cache, "unenroll"), perform(config, cache, "unenroll", 2)
    assert (gone["revoked"], again["revoked"]) == (["9001"], [])
    assert perform(config, cache, "enroll", 3)["granted"] == ["9001"]  # bought again: granted again
    assert state.summary()["providers"]["kajabi"]["duplicates"] == {}


def test_a_rejected_token_is_replaced_once_and_bad_credentials_are_a_config_error(
    live: tuple[str, Config, SandboxState],
) -> None:
    base, config, state = live
    cache = Cache()
    perform(config, cache, "enroll")
    state.store("kajabi", "tokens").clear()  # Kajabi forgot it (rotation, expiry): a 401 comes
    perform(config, cache, "enroll", 2)
    assert state.summary()["providers"]["kajabi"]["effects"]["token.issued"] == 2
    requests.post(f"{base}/_sandbox/kajabi/clients/kajabi_test_client/revoke", timeout=5)
    with pytest.raises(ConfigurationError):
        perform(config, Cache(), "enroll", 3)
