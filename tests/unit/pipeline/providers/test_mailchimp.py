"""Mailchimp as a source: the URL secret, Mailchimp's validation GET, form bodies, the mapping;
as a destination: an upsert that never re-subscribes anyone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from devtools.sandbox.state import SandboxState
from pipeline.config.load import load_config
from pipeline.config.model import SourceConfig
from pipeline.log.db import create_db_engine
from pipeline.log.events import StoredEvent
from pipeline.providers.base import DeliveryRef, Verdict
from pipeline.providers.mailchimp.destination import DESTINATION, subscriber_hash
from pipeline.providers.mailchimp.source import SOURCE
from pipeline.providers.shared import shape
from pipeline.settings import Settings
from receivers.app import create_app
from schemas.canonical import validate_canonical
from schemas.contracts.base import check
from tests.support.contexts import destination_context, source_config, source_context
from tests.support.db import rows, scalar
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT
from tests.support.stack import CONFIG, ThreadedServer, serve_sandbox
from tests.support.web import json_of

FIXTURES = FIXTURE_ROOT / "mailchimp"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
URL = "/webhooks/mailchimp_audience"


def body(name: str) -> bytes:
    return (FIXTURES / f"{name}.form").read_bytes()


def source(zone: str = "UTC") -> SourceConfig:
    return source_config(
        SOURCE,
        "mailchimp_audience",
        signing_secrets=("k",),
        max_body_bytes=10_000,
        options={"fired_at_timezone": zone},
    )


def stored(name: str, raw: bytes | None = None) -> StoredEvent:
    raw = raw if raw is not None else body(name)
    identified = SOURCE.identify(SOURCE.parse(raw), raw, {})
    return StoredEvent(
        id=1,
        source="mailchimp_audience",
        provider="mailchimp",
        external_id=identified.external_id,
        provider_type=identified.provider_type,
        lane="enrollments",
        body=raw,
        headers={},
        received_at=datetime.now(UTC),
        status="verified",
    )


def mapped(name: str, zone: str = "UTC", raw: bytes | None = None) -> dict[str, Any] | Verdict:
    event = stored(name, raw)
    ctx = source_context(source(zone))
    payload = SOURCE.parse(event.body)
    return SOURCE.canonicalize(ctx, event, payload, SOURCE.fetch(ctx, event, payload))


# -- the webhook edge, through the receiver ---------------------------------------------------


@pytest.fixture
def client(settings: Settings, clean: None) -> Iterator[FlaskClient]:
    app = create_app(
        settings, config=load_config(settings.config_path, settings.env), configure_logs=False
    )
    yield app.test_client()
    app.extensions["stackwire"].writer.close()


@pytest.fixture
def events(settings: Settings) -> Iterator[Any]:
    engine = create_db_engine(settings)
    yield lambda: rows(
        engine, "SELECT external_id, provider_type, secret_index, status FROM events"
    )
    engine.dispose()


def test_mailchimps_validation_get_is_answered_200_without_the_secret(client: FlaskClient) -> None:
    assert client.get(URL).status_code == 200
    assert client.get(f"{URL}?key=mc_url_key_current").status_code == 200


def test_a_form_webhook_with_the_url_secret_is_stored_once(
    client: FlaskClient, events: Any
) -> None:
    first = client.post(f"{URL}?key=mc_url_key_current", data=body("subscribe"), headers=FORM)
    again = client.post(f"{URL}?key=mc_url_key_current", data=body("subscribe"), headers=FORM)
    assert (first.status_code, json_of(first)["status"]) == (202, "accepted")
    assert (again.status_code, json_of(again)["status"]) == (200, "duplicate")
    [row] = events()
    assert row["provider_type"] == "subscribe"
    assert row["external_id"].startswith("mc_") and row["secret_index"] == 0


def test_the_previous_url_secret_still_works(client: FlaskClient, events: Any) -> None:
    response = client.post(f"{URL}?key=mc_url_key_previous", data=body("unsubscribe"), headers=FORM)
    assert response.status_code == 202
    assert events()[0]["secret_index"] == 1


@pytest.mark.parametrize(
    ("query", "code"), [("", "missing_signature"), ("?key=guessed", "bad_signature")]
)
def test_without_the_right_secret_nothing_is_stored(
    client: FlaskClient, events: Any, query: str, code: str
) -> None:
    response = client.post(f"{URL}{query}", data=body("subscribe"), headers=FORM)
    assert (response.status_code, json_of(response)["error"]["code"]) == (401, code)
    assert events() == []


@pytest.mark.parametrize(
    ("data", "headers", "status", "code"),
    [
        (
            b'{"type": "subscribe"}',
            {"Content-Type": "application/json"},
            415,
            "unsupported_media_type",
        ),
        (b"data=2&data[id]=1", FORM, 400, "malformed_form"),
        (b"fired_at=2009-03-26+21%3A35%3A57&data[id]=1", FORM, 400, "missing_event_type"),
        (b"type=subscribe&fired_at=x", FORM, 400, "missing_data"),
    ],
)
def test_bodies_that_are_not_mailchimp_webhooks_are_refused(
    client: FlaskClient, events: Any, data: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    response = client.post(f"{URL}?key=mc_url_key_current", data=data, headers=headers)
    assert (response.status_code, json_of(response)["error"]["code"]) == (status, code)
    # a body that passed the URL secret is kept aside (quarantined), never stored as valid
    kept = [(e["provider_type"], e["status"]) for e in events()]
    assert kept == ([("unreadable", "quarantined")] if status == 400 else [])


def test_every_mailchimp_type_runs_on_the_enrollments_lane(
    settings: Settings, client: FlaskClient
) -> None:
    client.post(f"{URL}?key=mc_url_key_current", data=body("campaign"), headers=FORM)
    engine = create_db_engine(settings)
    assert scalar(engine, "SELECT lane FROM events") == "enrollments"
    engine.dispose()


# -- parsing, contracts, mapping ----------------------------------------------------------------


def test_nested_form_keys_become_nested_fields() -> None:
    payload = SOURCE.parse(body("subscribe"))
    assert payload["fired_at"] == "2009-03-26 21:35:57"
    assert payload["data"]["merges"] == {
        "EMAIL": "api@mailchimp.com",
        "FNAME": "Mailchimp",
        "LNAME": "API",
        "INTERESTS": "Group1,Group2",
    }


@pytest.mark.parametrize(
    "name", ["subscribe", "unsubscribe", "cleaned", "profile", "upemail", "campaign"]
)
def test_every_fixture_meets_its_contract_exactly(name: str) -> None:
    payload = SOURCE.parse(body(name))
    contract = SOURCE.contract_for(name, payload)
    assert contract is not None
    report = check(contract, payload)
    assert (report.missing, report.invalid, report.unknown) == ([], [], [])


def test_a_subscribe_without_an_address_breaks_the_contract() -> None:
    payload = SOURCE.parse(body("subscribe"))
    del payload["data"]["email"]
    payload["data"]["surprise"] = "1"
    report = check(SOURCE.contracts["subscribe"], payload)
    assert report.missing == ["data.email"] and report.unknown == ["data.surprise"]


def test_subscribe_is_subscriber_added_with_fired_at_in_utc() -> None:
    event = mapped("subscribe")
    assert isinstance(event, dict)
    validate_canonical(event)
    assert event["type"] == "subscriber.added"
    assert event["occurred_at"] == "2009-03-26T21:35:57Z"
    assert event["contact"]["email"] == "api@mailchimp.com"
    assert (event["contact"]["first_name"], event["contact"]["last_name"]) == ("Mailchimp", "API")
    assert event["subscriber"] == {
        "id": "8a25ff1d98",
        "list_id": "a6b5da1054",
        "status": "subscribed",
        "tags": [],
    }
    assert event["key"] == "mailchimp:a6b5da1054:8a25ff1d98:subscribe:2009-03-26T21:35:57"


def test_fired_at_is_read_in_the_configured_zone() -> None:
    event = mapped("subscribe", zone="America/New_York")
    assert isinstance(event, dict)
    assert event["occurred_at"] == "2009-03-27T01:35:57Z"  # EDT, UTC-4, since 8 March 2009


def test_unsubscribe_and_delete_are_subscriber_unsubscribed() -> None:
    event = mapped("unsubscribe")
    assert isinstance(event, dict)
    assert (event["type"], event["subscriber"]["status"]) == (
        "subscriber.unsubscribed",
        "unsubscribed",
    )
    deleted = body("unsubscribe").replace(b"action%5D=unsub", b"action%5D=delete")
    event = mapped("unsubscribe", raw=deleted)
    assert isinstance(event, dict)
    assert event["subscriber"]["status"] == "deleted"


def test_a_cleaned_address_is_unsubscribed_elsewhere_too() -> None:
    event = mapped("cleaned")
    assert isinstance(event, dict)
    validate_canonical(event)
    assert event["type"] == "subscriber.unsubscribed"
    assert event["subscriber"]["status"] == "cleaned"
    assert event["subscriber"]["id"] == subscriber_hash("api+cleaned@mailchimp.com")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("profile", "profile_changes_are_not_mapped"),
        ("upemail", "address_changes_are_not_mapped"),
        ("campaign", "campaign_status_is_not_about_a_subscriber"),
    ],
)
def test_profile_upemail_and_campaign_are_ignored_with_a_reason(name: str, reason: str) -> None:
    assert mapped(name) == Verdict("ignore", reason)


def test_member_changes_are_versioned_by_fired_at_for_the_ordering_guard() -> None:
    ctx = source_context(source())
    first, later = stored("subscribe"), stored("unsubscribe")
    a = SOURCE.fetch(ctx, first, SOURCE.parse(first.body))
    b = SOURCE.fetch(ctx, later, SOURCE.parse(later.body))
    assert a is not None and b is not None
    assert a.object_key == b.object_key == "mailchimp:a6b5da1054:8a25ff1d98"
    assert b.version - a.version == 300_000
    assert SOURCE.fetch(ctx, stored("campaign"), SOURCE.parse(body("campaign"))) is None


def test_the_id_is_the_body_digest_so_only_an_identical_post_is_a_duplicate() -> None:
    raw = body("subscribe")
    assert stored("subscribe").external_id == stored("subscribe", bytes(raw)).external_id
    later = raw.replace(b"21%3A35%3A57", b"21%3A35%3A58")
    assert stored("subscribe").external_id != stored("subscribe", later).external_id


# -- the destination, against the sandbox -------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[ThreadedServer, SandboxState]]:
    yield from serve_sandbox(6)


def test_subscribe_creates_new_members_subscribed_and_leaves_an_unsubscribed_one_alone(
    sandbox: tuple[ThreadedServer, SandboxState],
) -> None:
    server, state = sandbox
    config = load_config(CONFIG, {"SANDBOX_PORT": str(server.port)})
    ctx = destination_context(config.destinations["email"], config)
    event = shape.event(
        "subscriber.added",
        key="t:1",
        source="kit",
        provider="kit",
        occurred_at=0,
        contact=shape.contact("left@example.com"),
    )
    member = state.store("mailchimp", "list:list0001")
    for verb, status in (("subscribe", "subscribed"), ("unsubscribe", "unsubscribed")):
        DESTINATION.perform(ctx, DeliveryRef(1, f"email.{verb}", verb, "k", 1), event)
        assert member[subscriber_hash("left@example.com")]["status"] == status
    # `status_if_new` only: a member who left stays unsubscribed
    DESTINATION.perform(ctx, DeliveryRef(1, "email.subscribe", "subscribe", "k", 1), event)
    assert member[subscriber_hash("left@example.com")]["status"] == "unsubscribed"
