"""Kit: the X-Kit-Signature scheme, both webhook sources, and the API v4 client against the sandbox."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from marshmallow import ValidationError

from devtools.sandbox.state import Fault, SandboxState
from pipeline.config.load import load_config
from pipeline.config.model import Config, SourceConfig
from pipeline.errors import (
    ConfigurationError,
    ContractError,
    PermanentError,
    RetryableError,
    SignatureError,
)
from pipeline.log.events import StoredEvent
from pipeline.providers.base import DeliveryRef, SourceContext, SourceProvider, Verdict
from pipeline.providers.kit.destination import DESTINATION, KitApi
from pipeline.providers.kit.source import SOURCE as KIT_SOURCE
from pipeline.providers.kit.source import KitLegacyOptions, KitLegacySource, KitSource
from pipeline.providers.shared import shape
from pipeline.settings import Settings
from pipeline.signatures.base import SignedRequest, Verified
from pipeline.signatures.timestamped_hmac import timestamped_hmac_hex
from receivers.app import create_app
from schemas.canonical import validate_canonical
from schemas.contracts.base import check
from tests.support import contexts
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT
from tests.support.stack import CONFIG, ThreadedServer, serve_sandbox
from tests.support.web import json_of

FIXTURES = FIXTURE_ROOT / "kit"
NEW, LEGACY = KitSource(), KitLegacySource()


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def source_config(name: str, provider: SourceProvider, **options: Any) -> SourceConfig:
    return contexts.source_config(
        provider,
        name,
        signing_secrets=("kit_whsec_current", "kit_whsec_previous"),
        max_body_bytes=100_000,
        options=options,
    )


def stored(provider: KitSource | KitLegacySource, body: bytes) -> StoredEvent:
    identified = provider.identify(provider.parse(body), body, {})
    return StoredEvent(
        id=1,
        source="s",
        provider=provider.name,
        external_id=identified.external_id,
        provider_type=identified.provider_type,
        lane="enrollments",
        body=body,
        headers={},
        received_at=datetime(2026, 8, 1, 12, 0, tzinfo=UTC),
        status="verified",
    )


def source_ctx(config: SourceConfig) -> SourceContext:
    return contexts.source_context(config)


def mapped(body: bytes, **options: Any) -> dict[str, Any] | Verdict:
    event, ctx = (
        stored(NEW, body),
        source_ctx(source_config("kit", NEW, **{"added_on_created": False, **options})),
    )
    payload = NEW.parse(body)
    assert NEW.verify(ctx, event, payload) is None
    return NEW.canonicalize(ctx, event, payload, NEW.fetch(ctx, event, payload))


# -- the signature ---------------------------------------------------------------------------------


def signed_request(body: bytes, header: str, now: float | None = None) -> SignedRequest:
    return SignedRequest(body, {"X-Kit-Signature": header}, {}, now or time.time())


def test_a_kit_signature_verifies_with_any_configured_secret() -> None:
    body, now = raw("subscriber.activated"), int(time.time())
    for index, secret in enumerate(("kit_whsec_current", "kit_whsec_previous")):
        header = f"t={now},v1={timestamped_hmac_hex(secret, now, body)}"
        assert KIT_SOURCE.signature.verify(
            source_config("kit", NEW), signed_request(body, header)
        ) == Verified(index)


def test_during_a_rotation_one_v1_per_secret_is_accepted() -> None:
    body, now = raw("subscriber.activated"), int(time.time())
    header = (
        f"t={now},v1={timestamped_hmac_hex('kit_whsec_rolled', now, body)},"
        f"v1={timestamped_hmac_hex('kit_whsec_previous', now, body)}"
    )
    assert (
        KIT_SOURCE.signature.verify(
            source_config("kit", NEW), signed_request(body, header)
        ).secret_index
        == 1
    )


@pytest.mark.parametrize(
    ("skew", "secret", "code"),
    [
        (0, "someone_else", "bad_signature"),
        (-301, "kit_whsec_current", "stale_timestamp"),
        (301, "kit_whsec_current", "stale_timestamp"),
    ],
)
def test_a_wrong_or_stale_signature_is_refused(skew: int, secret: str, code: str) -> None:
    body, now = raw("subscriber.activated"), int(time.time())
    header = f"t={now + skew},v1={timestamped_hmac_hex(secret, now + skew, body)}"
    with pytest.raises(SignatureError) as refused:
        KIT_SOURCE.signature.verify(source_config("kit", NEW), signed_request(body, header, now))
    assert refused.value.code == code


@pytest.fixture
def client(settings: Settings, clean: None) -> Iterator[FlaskClient]:
    app = create_app(
        settings, config=load_config(settings.config_path, settings.env), configure_logs=False
    )
    yield app.test_client()
    app.extensions["stackwire"].writer.close()


def test_the_receiver_takes_signed_deliveries_and_url_keyed_legacy_hooks(
    client: FlaskClient,
) -> None:
    body, now = raw("subscriber.activated"), int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Kit-Signature": f"t={now},v1={timestamped_hmac_hex('kit_whsec_current', now, body)}",
    }
    assert client.post("/webhooks/kit", data=body, headers=headers).status_code == 202
    again = client.post("/webhooks/kit", data=body, headers=headers)
    assert json_of(again)["status"] == "duplicate"
    unsigned = client.post("/webhooks/kit", data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    legacy = client.post(
        "/webhooks/kit_legacy_vip?key=kit_legacy_url_key",
        data=raw("legacy_subscriber"),
        headers={"Content-Type": "application/json"},
    )
    assert legacy.status_code == 202


# -- webhook endpoints: identity, contracts, mapping ------------------------------------------------


def test_a_delivery_is_identified_by_its_id_and_body_and_typed_by_its_events() -> None:
    event = stored(NEW, raw("subscriber.activated"))
    assert event.provider_type == "subscriber.activated"
    assert event.external_id.startswith("123456:")
    assert stored(NEW, raw("subscriber.activated") + b" ").external_id != event.external_id


@pytest.mark.parametrize(
    "name",
    [
        "subscriber.activated",
        "subscriber.created",
        "subscriber.unsubscribed",
        "subscriber.tag_added",
        "batched",
    ],
)
def test_every_fixture_meets_its_contract_exactly(name: str) -> None:
    payload = NEW.parse(raw(name))
    report = check(NEW.contracts[payload["events"][0]["type"]], payload)
    assert (report.missing, report.invalid, report.unknown) == ([], [], [])


def test_a_tag_event_without_its_tag_breaks_the_contract() -> None:
    payload = NEW.parse(raw("subscriber.tag_added"))
    del payload["events"][0]["data"]["tag"]
    assert check(NEW.contracts["subscriber.tag_added"], payload).missing == ["events.0.data.tag"]


def test_activation_is_subscriber_added_keyed_by_the_event_uuid() -> None:
    event = mapped(raw("subscriber.activated"))
    assert isinstance(event, dict)
    validate_canonical(event)
    assert (event["type"], event["key"]) == (
        "subscriber.added",
        "kit:9c2e1f3a-6b7d-4e8f-a1b2-c3d4e5f60718",
    )
    assert event["occurred_at"] == "2026-07-29T14:32:10Z"
    assert (
        event["contact"]["email"] == "ada@example.com" and event["contact"]["first_name"] == "Ada"
    )
    assert event["subscriber"] == {"id": "987654", "status": "active", "tags": []}


def test_creation_waits_for_activation_unless_the_source_says_otherwise() -> None:
    assert mapped(raw("subscriber.created")) == Verdict("ignore", "activation_follows_creation")
    inactive = mapped(raw("subscriber.created"), added_on_created=True)
    assert inactive == Verdict("ignore", "subscriber_not_active")
    active = raw("subscriber.created").replace(b'"inactive"', b'"active"')
    event = mapped(active, added_on_created=True)
    assert isinstance(event, dict) and event["type"] == "subscriber.added"


def test_unsubscribe_and_tag_added_map_to_their_canonical_events() -> None:
    gone = mapped(raw("subscriber.unsubscribed"))
    assert isinstance(gone, dict)
    assert (gone["type"], gone["subscriber"]["status"]) == ("subscriber.unsubscribed", "cancelled")
    tagged = mapped(raw("subscriber.tag_added"))
    assert isinstance(tagged, dict)
    validate_canonical(tagged)
    assert (tagged["type"], tagged["subscriber"]["tags"]) == ("subscriber.tagged", ["vip"])


def test_a_batched_delivery_is_dead_lettered_whole_not_half_processed() -> None:
    event, ctx = (
        stored(NEW, raw("batched")),
        source_ctx(source_config("kit", NEW, added_on_created=False)),
    )
    with pytest.raises(ContractError) as refused:
        NEW.verify(ctx, event, NEW.parse(event.body))
    assert refused.value.reason == "batched_delivery"


def test_subscription_changes_are_versioned_by_event_time_tags_are_not() -> None:
    ctx = source_ctx(source_config("kit", NEW, added_on_created=False))
    versions = {}
    for name in ("subscriber.activated", "subscriber.unsubscribed"):
        event = stored(NEW, raw(name))
        fetched = NEW.fetch(ctx, event, NEW.parse(event.body))
        assert fetched is not None and fetched.object_key == "kit:subscriber:987654"
        versions[name] = fetched.version
    assert versions["subscriber.unsubscribed"] > versions["subscriber.activated"]
    tag_event = stored(NEW, raw("subscriber.tag_added"))
    assert NEW.fetch(ctx, tag_event, NEW.parse(tag_event.body)) is None


# -- legacy webhooks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({"event": "tag_add", "tag": "vip"}, True),
        ({"event": "tag_add"}, False),
        ({"event": "subscriber_activate", "tag": "vip"}, False),
        ({"event": "form_subscribe"}, False),
    ],
)
def test_a_legacy_source_names_its_event_and_the_tag_of_tag_add(
    options: dict[str, str], valid: bool
) -> None:
    if valid:
        KitLegacyOptions().load(options)
    else:
        with pytest.raises(ValidationError):
            KitLegacyOptions().load(options)


@pytest.mark.parametrize(
    ("kind", "tag", "expected"),
    [
        ("subscriber_activate", None, ("subscriber.added", [])),
        ("subscriber_unsubscribe", None, ("subscriber.unsubscribed", [])),
        ("tag_add", "vip", ("subscriber.tagged", ["vip"])),
    ],
)
def test_a_legacy_body_maps_by_the_sources_event(
    kind: str, tag: str | None, expected: tuple[str, list[str]]
) -> None:
    body = raw("legacy_subscriber")
    event = stored(LEGACY, body)
    assert event.provider_type == "subscriber" and event.external_id.startswith("kitl_")
    ctx = source_ctx(source_config("legacy", LEGACY, event=kind, tag=tag))
    document = LEGACY.canonicalize(ctx, event, LEGACY.parse(body), None)
    assert isinstance(document, dict)
    validate_canonical(document)
    assert (document["type"], document["subscriber"]["tags"]) == expected
    assert document["occurred_at"] == "2026-08-01T12:00:00Z"  # no time in the body: when received


# -- the API v4 client, against the sandbox ------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[ThreadedServer, SandboxState]]:
    yield from serve_sandbox(3)


@pytest.fixture
def kit(sandbox: tuple[ThreadedServer, SandboxState], redis_url: str, clean: None) -> Iterator[Any]:
    server, state = sandbox
    state.reset()
    client = redis.Redis.from_url(redis_url)
    config: Config = load_config(CONFIG, {"SANDBOX_PORT": str(server.port)})

    def perform(
        verb: str, email: str = "ada@example.com", tags: tuple[str, ...] = ("vip",)
    ) -> dict[str, Any]:
        ctx = contexts.destination_context(config.destinations["kit"], config, redis=client)
        event = shape.event(
            "subscriber.added",
            key="t:1",
            source="mailchimp_audience",
            provider="mailchimp",
            occurred_at=time.time(),
            contact=shape.contact(email, first_name="Ada"),
            subscriber={"id": "x", "tags": list(tags)},
        )
        return DESTINATION.perform(ctx, DeliveryRef(1, f"kit.{verb}", verb, "k", 1), event)

    perform.state = state  # type: ignore[attr-defined]
    perform.api = lambda: KitApi(  # type: ignore[attr-defined]
        contexts.destination_context(config.destinations["kit"], config, redis=client, now=0)
    )
    yield perform
    client.close()


def kit_calls(state: SandboxState, method: str, path: str) -> int:
    return sum(1 for c in state.calls if c.method == method and c.path == f"/kit/v4{path}")


def test_subscribe_upserts_then_tags_with_tags_created_once(kit: Any) -> None:
    result = kit("subscribe")
    assert set(result["tags"]) == {"from-mailchimp", "vip"} and result["state"] == "active"
    kit("subscribe")  # a replay: the upsert answers 200, the taggings 200
    summary = kit.state.summary()["providers"]["kit"]
    assert summary == {
        "effects": {"subscriber.created": 1, "tag.created": 2, "subscriber.tagged": 2},
        "duplicates": {},
    }
    assert kit_calls(kit.state, "GET", "/tags") == 2  # once per unknown tag; then from the cache
    assert kit_calls(kit.state, "POST", "/tags") == 2


def test_subscribe_never_reactivates_someone_who_unsubscribed(kit: Any) -> None:
    # Kit's upsert does not change an existing subscriber's state (create-a-subscriber: "Updating
    # the subscriber state with this endpoint is not supported")
    kit("subscribe")
    kit("unsubscribe")
    assert kit("subscribe")["state"] == "cancelled"
    assert kit.state.summary()["providers"]["kit"]["effects"]["subscriber.unsubscribed"] == 1


def test_a_tag_on_a_later_page_is_found_by_its_cursor_not_created(kit: Any) -> None:
    for index in range(1500):
        kit.state.store("kit", "tags")[index] = {
            "id": index,
            "name": f"tag-{index}",
            "created_at": "x",
        }
    assert kit.api().tag_id("tag-1400") == "1400"
    assert kit_calls(kit.state, "GET", "/tags") == 2 and kit_calls(kit.state, "POST", "/tags") == 0
    assert kit.api().tag_id("tag-7") == "7"  # cached while reading the first page
    assert kit_calls(kit.state, "GET", "/tags") == 2


def test_a_cached_tag_deleted_in_kit_is_looked_up_again(kit: Any) -> None:
    kit("subscribe")
    tags = kit.state.store("kit", "tags")
    vip = next(key for key, tag in tags.items() if tag["name"] == "vip")
    del tags[vip]
    result = kit("tag")
    assert result["tags"]["vip"] != str(vip)


def test_tagging_an_address_kit_does_not_know_is_a_permanent_error(kit: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        kit("tag", email="nobody@example.com")
    assert failed.value.reason == "no_such_subscriber"


def test_unsubscribe_finds_the_id_then_unsubscribes_once(kit: Any) -> None:
    kit("subscribe")
    first = kit("unsubscribe")
    assert first["unsubscribed"] is True
    assert kit("unsubscribe") == {"subscriber": first["subscriber"], "already": "cancelled"}
    assert kit("unsubscribe", email="nobody@example.com") == {"skipped": "no_such_subscriber"}
    assert kit_calls(kit.state, "POST", f"/subscribers/{first['subscriber']}/unsubscribe") == 1
    assert kit("subscribe")["state"] == "cancelled"  # Kit's upsert never re-activates


def test_a_refused_key_is_a_configuration_error_and_429_is_retried(kit: Any) -> None:
    kit.state.store("kit", "revoked")["kit_test_api_key"] = True
    with pytest.raises(ConfigurationError):
        kit("subscribe")
    kit.state.store("kit", "revoked").clear()
    kit.state.faults["kit"] = Fault(status=429)
    with pytest.raises(RetryableError) as throttled:
        kit("subscribe")
    assert (throttled.value.http_status, throttled.value.retry_after) == (429, None)
    assert kit.state.calls[-1].status == 429
