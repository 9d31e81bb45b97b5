"""HubSpot contacts: one input per person, per-delivery results, partial failures and rate limits,
against HubSpot's own answers (tests/fixtures/hubspot)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from marshmallow import ValidationError

from pipeline.errors import ConfigurationError, ContractError, PermanentError, RetryableError
from pipeline.providers.base import DeliveryRef
from pipeline.providers.hubspot.destination import DESTINATION, HubSpotOptions, until_reset
from pipeline.providers.shared import shape
from tests.support.canned import Answer, Canned
from tests.support.contexts import destination_config, destination_context
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT

FIXTURES = FIXTURE_ROOT / "hubspot"
NOW = datetime(2026, 10, 2, 9, 0, tzinfo=UTC).timestamp()


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def send(
    items: list[tuple[DeliveryRef, dict[str, Any]]], *answers: Answer, **options: Any
) -> tuple[dict[int, Any], Canned]:
    loaded = HubSpotOptions().load(
        {
            "access_token": "pat-na1-11111111-2222-3333-4444-555555555555",
            "properties": {"purchase.completed": {"lifecyclestage": "customer"}},
            **options,
        }
    )
    destination = destination_config(
        DESTINATION,
        "crm",
        api_base="https://api.hubapi.com",
        timeout_seconds=2.0,
        options=loaded,
    )
    wire, session = Canned(*answers), requests.Session()
    session.mount("https://", wire)
    ctx = destination_context(destination, http=session, now=NOW)
    return DESTINATION.perform_batch(ctx, items), wire


def item(
    number: int,
    email: str | None,
    *,
    kind: str = "purchase.completed",
    at: int = 0,
    first: str | None = None,
) -> tuple[DeliveryRef, dict[str, Any]]:
    part = (
        {"purchase": {"id": f"cs_{number}", "amount": 4900, "currency": "usd", "items": []}}
        if kind.startswith("purchase")
        else {"subscription": {"id": f"sub_{number}", "status": "active", "items": []}}
    )
    event = shape.event(
        kind,
        key=f"stripe:cs_{number}",
        source="stripe_crm",
        provider="stripe",
        occurred_at=NOW - 3600 + at,
        contact=shape.contact(email, first_name=first, last_name="Lovelace"),
        **part,
    )
    ref = DeliveryRef(
        id=number,
        action="crm.upsert",
        verb="upsert",
        idempotency_key=f"sw_{number:040d}",
        attempt=1,
    )
    return ref, event


OK: Answer = (200, fixture("batch_upsert_200.json"), {})


def test_deliveries_for_one_person_become_one_input_and_each_gets_the_contact() -> None:
    # Given three deliveries, two of them about Ada (her address typed two ways), later one last
    items = [
        item(1, "grace@example.org", first="Grace", at=30),
        item(2, "Ada@Example.com", first="Adeline", kind="subscription.started", at=60),
        item(3, "ada@example.com", first="Ada", at=0),
    ]

    results, wire = send(items, OK)

    # Then one request names each person once, the later event's values winning
    (body,) = wire.bodies()
    assert [i["id"] for i in body["inputs"]] == ["ada@example.com", "grace@example.org"]
    ada = body["inputs"][0]
    assert ada["idProperty"] == "email"
    assert ada["properties"] == {
        "email": "ada@example.com",
        "firstname": "Adeline",
        "lastname": "Lovelace",
        "lifecyclestage": "customer",
    }
    assert len({i["objectWriteTraceId"] for i in body["inputs"]}) == 2
    assert wire.sent[0].headers["Authorization"].startswith("Bearer pat-na1-")
    assert wire.sent[0].url == "https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert"
    # and every delivery has the contact's result (matched by e-mail: no trace ids came back)
    assert results[2] == results[3] == {"contact_id": "51", "new": True, "deliveries_collapsed": 2}
    assert results[1] == {"contact_id": "52", "new": False, "deliveries_collapsed": 1}


def test_a_partial_failure_fails_only_the_inputs_hubspot_names() -> None:
    items = [item(1, "ada@example.com", first="Ada"), item(2, "not-an-address@@example.com", at=5)]

    results, _ = send(items, (207, fixture("batch_upsert_207.json"), {}))

    assert results[1] == {"contact_id": "61", "new": True, "deliveries_collapsed": 1}
    failed = results[2]
    assert isinstance(failed, PermanentError) and not isinstance(failed, RetryableError)
    assert failed.reason == "contact_rejected"
    assert (
        failed.message == "HubSpot rejected the contact (VALIDATION_ERROR): INVALID_EMAIL on email"
    )
    assert "not-an-address" not in failed.message


def test_a_refused_request_fails_its_contacts_without_naming_anyone() -> None:
    results, _ = send([item(1, "ada@example.com")], (400, fixture("duplicate_ids_400.json"), {}))

    assert isinstance(results[1], PermanentError)
    assert results[1].http_status == 400
    assert "ada@example.com" not in results[1].message and "[email]" in results[1].message


def test_a_delivery_without_an_email_fails_alone() -> None:
    results, wire = send([item(1, None), item(3, "ada@example.com")], OK)

    assert isinstance(results[1], ContractError)
    assert results[3]["contact_id"] == "51"
    assert [i["id"] for i in wire.bodies()[0]["inputs"]] == ["ada@example.com"]


def test_a_daily_limit_waits_until_midnight_in_the_account_time_zone() -> None:
    daily: Answer = (429, fixture("rate_limit_daily_429.json"), {})

    with pytest.raises(RetryableError) as raised:
        send([item(1, "ada@example.com")], daily, account_timezone="America/New_York")

    # 09:00 UTC is 05:00 in New York: the quota resets in 19 hours, and we come back just after
    assert raised.value.http_status == 429
    assert raised.value.reason == "rate_limited_daily"
    assert raised.value.retry_after == pytest.approx(19 * 3600 + 60)


def test_midnight_is_the_account_s_own_across_a_daylight_saving_change() -> None:
    # 2026-11-01 is 25 hours long in New York: from 00:30 local, the next midnight is 24.5 h away
    start = datetime(2026, 11, 1, 0, 30, tzinfo=ZoneInfo("America/New_York")).timestamp()
    assert until_reset(start, "America/New_York") == pytest.approx(24.5 * 3600 + 60)


def test_a_rolling_limit_waits_its_interval_and_retry_after_wins_when_sent() -> None:
    body = fixture("rate_limit_secondly_429.json")
    headers = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}

    with pytest.raises(RetryableError) as rolling:
        send([item(1, "ada@example.com")], (429, body, headers))
    with pytest.raises(RetryableError) as told:
        send([item(1, "ada@example.com")], (429, body, {**headers, "Retry-After": "3"}))

    assert (rolling.value.retry_after, rolling.value.reason) == (10.0, "rate_limited")
    assert told.value.retry_after == 3.0


def test_a_success_that_uses_up_the_quota_defers_the_rest_of_the_batch() -> None:
    spent = {
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    items = [item(1, "ada@example.com"), item(2, "grace@example.org", at=5)]

    results, wire = send(
        items, (200, fixture("batch_upsert_200.json"), spent), inputs_per_request=1
    )

    assert len(wire.sent) == 1
    assert results[1]["contact_id"] == "51"
    assert isinstance(results[2], RetryableError) and results[2].retry_after == 10.0


def test_refused_credentials_fail_the_whole_batch_as_a_configuration_error() -> None:
    unauthorized: Answer = (401, fixture("unauthorized_401.json"), {})
    items = [item(1, "ada@example.com"), item(2, "grace@example.org", at=5)]

    with pytest.raises(ConfigurationError):
        send(items, unauthorized, inputs_per_request=1)


def test_a_dated_api_version_uses_its_path() -> None:
    _, wire = send([item(1, "ada@example.com")], OK, api_version="2026-03")
    assert wire.sent[0].url == "https://api.hubapi.com/crm/objects/2026-03/contacts/batch/upsert"


@pytest.mark.parametrize(
    "options",
    [
        {"inputs_per_request": 101},
        {"properties": {"purchase.shipped": {"a": "b"}}},
        {"properties": {"purchase.*": {"a": ["list"]}}},
        {"account_timezone": "Mars/Olympus"},
        {"api_version": "v4"},
    ],
)
def test_options_outside_what_hubspot_takes_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        HubSpotOptions().load({"access_token": "pat-na1-x", **options})
