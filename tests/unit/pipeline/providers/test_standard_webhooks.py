"""The Standard Webhooks source: the canonical envelope mapped, quarantined when a part is missing,
laned by canonical type, and received through the real webhook endpoint."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from pipeline.config.load import load_config
from pipeline.errors import BadPayload
from pipeline.log.db import create_db_engine
from pipeline.log.events import StoredEvent
from pipeline.providers.standard_webhooks.source import SOURCE
from pipeline.settings import Settings
from pipeline.signatures.standard_webhooks import standard_webhooks_headers
from receivers.app import create_app
from schemas.canonical import validate_canonical
from schemas.contracts.base import check
from tests.support.contexts import received_headers
from tests.support.db import rows
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT

FIXTURES = FIXTURE_ROOT / "generic"
SECRET = "whsec_c3RhY2t3aXJlLXN0YW5kYXJkLXdlYmhvb2tzLWN1cjE="  # sw-orders', 60-generic.toml


def envelope(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def stored(payload: dict[str, Any], external_id: str = "msg_1") -> StoredEvent:
    return StoredEvent(
        id=1,
        source="sw-orders",
        provider="standard_webhooks",
        external_id=external_id,
        provider_type=payload["type"],
        lane="payments",
        body=json.dumps(payload).encode(),
        headers={},
        received_at=datetime.now(UTC),
        status="verified",
    )


def canonicalize(payload: dict[str, Any], external_id: str = "msg_1") -> dict[str, Any]:
    result = SOURCE.canonicalize(None, stored(payload, external_id), payload, None)  # type: ignore[arg-type]
    assert isinstance(result, dict)
    validate_canonical(result)  # what the fetch step checks before planning anything
    return result


def contract_report(payload: dict[str, Any]) -> Any:
    schema = SOURCE.contract_for(payload["type"], payload)
    assert schema is not None
    return check(schema, payload)


# --- identity and lanes ------------------------------------------------------------------------


def test_the_webhook_id_is_the_event_id_and_the_type_comes_from_the_envelope() -> None:
    headers = received_headers({"Webhook-Id": "msg_9"})
    found = SOURCE.identify(envelope("purchase.completed"), b"{}", headers)
    assert (found.external_id, found.provider_type) == ("msg_9", "purchase.completed")


@pytest.mark.parametrize("payload", [[1, 2], {"type": 7}, {"data": {}}])
def test_a_body_without_a_type_is_a_bad_payload(payload: Any) -> None:
    with pytest.raises(BadPayload):
        SOURCE.identify(payload, b"{}", received_headers({"webhook-id": "msg_9"}))


@pytest.mark.parametrize(
    ("kind", "lane"),
    [
        ("purchase.completed", "payments"),
        ("booking.created", "enrollments"),
        ("analytics.page_view", "analytics"),
        ("order.created", None),
        ("analytics.Page-View", None),
        ("purchase.exploded", None),
    ],
)
def test_the_lane_follows_the_canonical_type(kind: str, lane: str | None) -> None:
    assert SOURCE.lane_for(kind) == lane


# --- the envelope ------------------------------------------------------------------------------


def test_a_purchase_envelope_becomes_a_canonical_purchase() -> None:
    event = canonicalize(envelope("purchase.completed"))
    assert event["type"] == "purchase.completed"
    assert event["key"] == "sw-orders:ord_20260301_1001"
    assert event["occurred_at"] == "2026-03-01T12:00:00Z"
    assert event["purchase"]["amount"] == 4900
    assert event["contact"]["email"] == "ada.lovelace@example.com"
    assert (event["source"], event["provider"]) == ("sw-orders", "standard_webhooks")


def test_a_subject_key_in_data_names_the_subject_and_the_webhook_id_is_the_fallback() -> None:
    payload = envelope("purchase.completed")
    payload["data"]["key"] = "order-1001"
    assert canonicalize(payload)["key"] == "sw-orders:order-1001"
    del payload["data"]["key"], payload["id"]
    assert canonicalize(payload, external_id="msg_2KWP")["key"] == "sw-orders:msg_2KWP"


def test_a_booking_keeps_utc_and_the_attendees_zone() -> None:
    event = canonicalize(envelope("booking.created"))
    assert event["booking"]["starts_at"] == "2026-03-05T14:00:00Z"
    assert event["booking"]["timezone"] == "Europe/Paris"
    assert event["occurred_at"] == "2026-03-01T09:30:00Z"


@pytest.mark.parametrize("name", ["purchase.completed", "booking.created", "analytics.page_view"])
def test_the_fixtures_meet_their_contract(name: str) -> None:
    report = contract_report(envelope(name))
    assert (report.missing, report.invalid, report.unknown) == ([], [], [])


def test_a_missing_family_part_quarantines() -> None:
    payload = envelope("purchase.completed")
    del payload["data"]["purchase"]
    report = contract_report(payload)
    assert report.broken
    assert report.missing == ["data.purchase"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.pop("occurred_at"), "occurred_at"),
        (lambda p: p["data"]["purchase"].pop("currency"), "data.purchase.currency"),
        (lambda p: p["data"].update(purchase=None), "data.purchase"),
        (lambda p: p.update(occurred_at="2026-03-01T12:00:00"), "occurred_at"),  # no offset
        (lambda p: p["data"]["contact"].update(email="not an address"), "data.contact.email"),
    ],
)
def test_a_broken_part_is_named(change: Any, field: str) -> None:
    payload = copy.deepcopy(envelope("purchase.completed"))
    change(payload)
    report = contract_report(payload)
    assert report.broken
    assert any(entry.split(":")[0] == field for entry in report.missing + report.invalid)


def test_an_unknown_field_is_drift_not_a_break() -> None:
    payload = envelope("purchase.completed")
    payload["data"]["purchase"]["coupon"] = "SPRING"
    report = contract_report(payload)
    assert (report.broken, report.unknown) == (False, ["data.purchase.coupon"])
    assert SOURCE.default_on_unknown_fields == "warn"


# --- through the receiver ----------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings, clean: None) -> Iterator[FlaskClient]:
    app = create_app(
        settings, config=load_config(settings.config_path, settings.env), configure_logs=False
    )
    yield app.test_client()
    app.extensions["stackwire"].writer.close()


def post(client: FlaskClient, payload: dict[str, Any], msg_id: str) -> Any:
    body = json.dumps(payload).encode()
    headers = standard_webhooks_headers(SECRET, msg_id, int(time.time()), body)
    return client.post(
        "/webhooks/sw-orders", data=body, headers={**headers, "Content-Type": "application/json"}
    )


def test_a_signed_envelope_is_stored_on_its_lane_and_an_unknown_type_is_ignored(
    client: FlaskClient, settings: Settings
) -> None:
    assert post(client, envelope("purchase.completed"), "msg_a").status_code == 202
    assert post(client, envelope("purchase.completed"), "msg_a").json["status"] == "duplicate"
    ignored = post(client, {**envelope("purchase.completed"), "type": "order.paid"}, "msg_b")
    assert (ignored.status_code, ignored.json["status"]) == (200, "ignored")
    engine = create_db_engine(settings)
    found = rows(engine, "SELECT external_id, lane, status FROM events ORDER BY id")
    engine.dispose()
    assert found == [
        {"external_id": "msg_a", "lane": "payments", "status": "received"},
        {"external_id": "msg_b", "lane": "analytics", "status": "ignored"},
    ]


def test_an_unsigned_envelope_is_refused(client: FlaskClient) -> None:
    body = json.dumps(envelope("purchase.completed")).encode()
    response = client.post(
        "/webhooks/sw-orders",
        data=body,
        headers={"Content-Type": "application/json", "webhook-id": "msg_c"},
    )
    assert response.status_code == 401
