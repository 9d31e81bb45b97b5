"""ActiveCampaign: the form-encoded webhook source and the API v3 client against the sandbox."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from devtools.sandbox.state import Fault, SandboxState
from pipeline.config.load import load_config
from pipeline.config.model import Config
from pipeline.errors import ConfigurationError, RetryableError
from pipeline.log.events import StoredEvent
from pipeline.providers.activecampaign.destination import DESTINATION
from pipeline.providers.activecampaign.source import SOURCE
from pipeline.providers.base import DeliveryRef, SourceContext
from pipeline.providers.shared import shape
from pipeline.settings import Settings
from receivers.app import create_app
from schemas.canonical import validate_canonical
from schemas.contracts.base import check
from tests.support.contexts import destination_context, source_config, source_context
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT
from tests.support.stack import CONFIG, ThreadedServer, serve_sandbox
from tests.support.web import json_of

FIXTURES = FIXTURE_ROOT / "activecampaign"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.form").read_bytes()


def ctx(zone: str = "UTC") -> SourceContext:
    config = source_config(
        SOURCE, signing_secrets=("k",), max_body_bytes=10_000, options={"date_time_timezone": zone}
    )
    return source_context(config)


def stored(body: bytes) -> StoredEvent:
    identified = SOURCE.identify(SOURCE.parse(body), body, {})
    return StoredEvent(
        id=1,
        source="activecampaign",
        provider="activecampaign",
        external_id=identified.external_id,
        provider_type=identified.provider_type,
        lane="enrollments",
        body=body,
        headers={},
        received_at=datetime.now(UTC),
        status="verified",
    )


def mapped(body: bytes, zone: str = "UTC") -> Any:
    event, context = stored(body), ctx(zone)
    payload = SOURCE.parse(body)
    return SOURCE.canonicalize(context, event, payload, SOURCE.fetch(context, event, payload))


# -- the source ---------------------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings, clean: None) -> Iterator[FlaskClient]:
    app = create_app(
        settings, config=load_config(settings.config_path, settings.env), configure_logs=False
    )
    yield app.test_client()
    app.extensions["stackwire"].writer.close()


def test_the_receiver_needs_the_url_secret_and_dedupes_an_identical_post(
    client: FlaskClient,
) -> None:
    url = "/webhooks/activecampaign"
    assert client.post(url, data=raw("subscribe"), headers=FORM).status_code == 401
    assert (
        client.post(f"{url}?key=ac_url_key", data=raw("subscribe"), headers=FORM).status_code == 202
    )
    again = client.post(f"{url}?key=ac_url_key", data=raw("subscribe"), headers=FORM)
    assert (again.status_code, json_of(again)["status"]) == (200, "duplicate")
    assert client.get(url).status_code == 405  # unlike Mailchimp, no validation GET


@pytest.mark.parametrize("name", ["subscribe", "unsubscribe", "contact_tag_added"])
def test_every_fixture_meets_its_contract_exactly(name: str) -> None:
    payload = SOURCE.parse(raw(name))
    report = check(SOURCE.contracts[name], payload)
    assert (report.missing, report.invalid, report.unknown) == ([], [], [])


def test_a_tag_event_without_the_tag_or_the_contact_id_breaks_the_contract() -> None:
    payload = SOURCE.parse(raw("contact_tag_added"))
    del payload["tag"], payload["contact"]["id"]
    assert sorted(check(SOURCE.contracts["contact_tag_added"], payload).missing) == [
        "contact.id",
        "tag",
    ]


def test_subscribe_is_subscriber_added_on_its_list_in_utc() -> None:
    event = mapped(raw("subscribe"))
    validate_canonical(event)
    assert event["type"] == "subscriber.added"
    assert event["occurred_at"] == "2026-05-04T15:15:30Z"  # the payload's -05:00 offset, applied
    assert event["contact"]["email"] == "jane.doe@example.com"
    assert (event["contact"]["first_name"], event["contact"]["last_name"]) == ("Jane", "Doe")
    assert event["subscriber"] == {"id": "42", "list_id": "3", "status": "subscribed", "tags": []}
    assert event["key"] == "activecampaign:42:subscribe:3:2026-05-04T10:15:30-05:00"


def test_a_naive_date_time_is_read_in_the_configured_zone() -> None:
    body = raw("subscribe").replace(b"2026-05-04T10%3A15%3A30-05%3A00", b"2026-05-04+10%3A15%3A30")
    assert mapped(body, zone="America/Chicago")["occurred_at"] == "2026-05-04T15:15:30Z"
    assert mapped(body)["occurred_at"] == "2026-05-04T10:15:30Z"


def test_unsubscribe_and_tag_added_map_to_their_canonical_events() -> None:
    gone = mapped(raw("unsubscribe"))
    assert (gone["type"], gone["subscriber"]["status"]) == (
        "subscriber.unsubscribed",
        "unsubscribed",
    )
    tagged = mapped(raw("contact_tag_added"))
    validate_canonical(tagged)
    assert (tagged["type"], tagged["subscriber"]["tags"], tagged["subscriber"]["list_id"]) == (
        "subscriber.tagged",
        ["vip"],
        None,
    )


def test_list_status_changes_are_versioned_per_list_and_contact() -> None:
    versions = {}
    for name in ("subscribe", "unsubscribe"):
        event = stored(raw(name))
        fetched = SOURCE.fetch(ctx(), event, SOURCE.parse(event.body))
        assert fetched is not None and fetched.object_key == "activecampaign:3:42"
        versions[name] = fetched.version
    assert versions["unsubscribe"] > versions["subscribe"]
    tag_event = stored(raw("contact_tag_added"))
    assert SOURCE.fetch(ctx(), tag_event, SOURCE.parse(tag_event.body)) is None


# -- the API v3 client, against the sandbox ------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[ThreadedServer, SandboxState]]:
    yield from serve_sandbox(5)


@pytest.fixture
def ac(sandbox: tuple[ThreadedServer, SandboxState], redis_url: str, clean: None) -> Iterator[Any]:
    server, state = sandbox
    state.reset()
    client = redis.Redis.from_url(redis_url)
    config: Config = load_config(CONFIG, {"SANDBOX_PORT": str(server.port)})

    def perform(
        verb: str, email: str = "jane@example.com", tags: tuple[str, ...] = ("vip",)
    ) -> dict[str, Any]:
        context = destination_context(config.destinations["activecampaign"], config, redis=client)
        event = shape.event(
            "subscriber.added",
            key="t:1",
            source="mailchimp_audience",
            provider="mailchimp",
            occurred_at=time.time(),
            contact=shape.contact(email, first_name="Jane", last_name="Doe"),
            subscriber={"id": "x", "tags": list(tags)},
        )
        return DESTINATION.perform(
            context, DeliveryRef(1, f"activecampaign.{verb}", verb, "k", 1), event
        )

    perform.state = state  # type: ignore[attr-defined]
    yield perform
    client.close()


def calls(state: SandboxState, method: str, path: str) -> int:
    return sum(
        1 for c in state.calls if c.method == method and c.path == f"/activecampaign/api/3{path}"
    )


def test_subscribe_syncs_the_contact_subscribes_it_to_the_list_and_tags_it(ac: Any) -> None:
    result = ac("subscribe")
    assert result["created"] is True and result["list"] == "1"
    assert result["list_status"] == "subscribed"
    assert set(result["tags"]) == {"from-mailchimp", "vip"}
    contact = ac.state.store("activecampaign", "contacts")[result["contact"]]
    assert (contact["firstName"], contact["lastName"]) == ("Jane", "Doe")
    assert ac.state.store("activecampaign", "contact_lists")[(result["contact"], "1")] == "1"
    assert (
        calls(ac.state, "GET", f"/contacts/{result['contact']}/contactTags") == 0
    )  # new: none yet


def test_a_replayed_subscribe_attaches_no_tag_twice(ac: Any) -> None:
    ac("subscribe")
    again = ac("subscribe")
    assert again["created"] is False
    assert ac.state.summary()["providers"]["activecampaign"] == {
        "effects": {
            "contact.created": 1,
            "contact_list.subscribed": 1,
            "tag.created": 2,
            "contact_tag.created": 2,
        },
        "duplicates": {},
    }
    assert calls(ac.state, "GET", "/tags") == 2  # then from the cache


def test_the_exact_tag_is_picked_from_a_contains_search(ac: Any) -> None:
    tags = ac.state.store("activecampaign", "tags")
    tags["7"] = {
        "tagType": "contact",
        "tag": "vip-gold",
        "description": "",
        "cdate": "x",
        "id": "7",
    }
    tags["8"] = {"tagType": "contact", "tag": "vip", "description": "", "cdate": "x", "id": "8"}
    assert ac("subscribe", tags=("vip",))["tags"]["vip"] == "8"


def test_a_cached_tag_deleted_in_activecampaign_is_looked_up_again(ac: Any) -> None:
    first = ac("subscribe")
    del ac.state.store("activecampaign", "tags")[first["tags"]["vip"]]
    ac.state.store("activecampaign", "contact_tags").clear()
    assert ac("tag")["tags"]["vip"] != first["tags"]["vip"]


def test_unsubscribe_sets_status_2_on_the_configured_list(ac: Any) -> None:
    contact = ac("subscribe")["contact"]
    assert ac("unsubscribe") == {"contact": contact, "list": "1", "status": "unsubscribed"}
    assert ac.state.store("activecampaign", "contact_lists")[(contact, "1")] == "2"
    assert ac("unsubscribe", email="nobody@example.com") == {"skipped": "no_such_contact"}


def test_a_subscribe_never_resubscribes_someone_who_unsubscribed(ac: Any) -> None:
    # Given a contact who unsubscribed from the list
    contact = ac("subscribe")["contact"]
    ac("unsubscribe")
    # When another tool says they subscribed there
    again = ac("subscribe")
    # Then they stay unsubscribed: only they can opt back in
    assert again["list_status"] == "unsubscribed" and again["kept"] is True
    assert ac.state.store("activecampaign", "contact_lists")[(contact, "1")] == "2"
    assert calls(ac.state, "POST", "/contactLists") == 2  # the first subscribe, the unsubscribe


def test_a_known_contact_new_to_the_list_is_subscribed_to_it(ac: Any) -> None:
    contact = ac("tag")["contact"]  # synced and tagged, on no list
    joined = ac("subscribe")
    assert (joined["created"], joined["list_status"]) == (False, "subscribed")
    assert ac.state.store("activecampaign", "contact_lists")[(contact, "1")] == "1"


def test_a_refused_token_is_a_configuration_error_and_429_is_retried(ac: Any) -> None:
    ac.state.store("activecampaign", "revoked")["ac_test_api_token"] = True
    with pytest.raises(ConfigurationError):
        ac("subscribe")
    ac.state.store("activecampaign", "revoked").clear()
    ac.state.faults["activecampaign"] = Fault(status=429, retry_after=2)
    with pytest.raises(RetryableError) as throttled:
        ac("subscribe")
    assert (throttled.value.http_status, throttled.value.retry_after) == (429, 2.0)
