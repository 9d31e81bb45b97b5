"""Acuity Scheduling as a source: identity, the `changed` duplicate, canceled state, DST-proof times.

`tests/fixtures/acuity/appointment.json` is the documented appointment example (id 54321, Bob
McTest, `datetime` "2013-07-02T10:15:00-0700") with the fields recorded API answers add
(`canceled`, `calendarTimezone`, `datetimeCreated`, …); the `.form` files are webhook bodies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from pipeline.config.model import SourceConfig
from pipeline.errors import BadPayload, ConfigurationError, ContractError
from pipeline.log.events import StoredEvent
from pipeline.providers.acuity.source import SOURCE
from pipeline.providers.base import Fetched, SourceContext, Verdict
from schemas.canonical import validate_canonical
from schemas.contracts.base import ContractReport, check
from tests.support.contexts import source_config, source_context
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT
from tests.support.stack import serve_sandbox

FIXTURES = FIXTURE_ROOT / "acuity"
RECEIVED = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def form(action: str) -> bytes:
    return (FIXTURES / f"{action}.form").read_bytes()


def appointment(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((FIXTURES / "appointment.json").read_text())
    found.update(changes)
    return found


def source(api_base: str = "https://acuityscheduling.com/api/v1", key: str = "k") -> SourceConfig:
    return source_config(
        SOURCE,
        signing_secrets=(key,),
        api_base=api_base,
        max_body_bytes=262144,
        options={"user_id": "21110176", "api_key": key},
    )


def ctx(**kwargs: Any) -> SourceContext:
    return source_context(source(**kwargs), now=0.0)


def stored(body: bytes) -> tuple[StoredEvent, dict[str, Any]]:
    payload = SOURCE.parse(body)
    found = SOURCE.identify(payload, body, {})
    event = StoredEvent(
        id=1,
        source="acuity",
        provider="acuity",
        external_id=found.external_id,
        provider_type=found.provider_type,
        lane="enrollments",
        body=body,
        headers={},
        received_at=RECEIVED,
        status="verified",
    )
    return event, payload


def canonical(action: str, **changes: Any) -> dict[str, Any] | Verdict:
    event, payload = stored(form(action))
    fetched = Fetched(appointment(**changes), "acuity:appointment:54321", 0)
    result = SOURCE.canonicalize(ctx(), event, payload, fetched)
    if isinstance(result, dict):
        validate_canonical(result)
    return result


# -- identity -----------------------------------------------------------------------------------


def test_a_scheduled_post_is_identified_by_action_id_and_body() -> None:
    body = form("scheduled")
    first = SOURCE.identify(SOURCE.parse(body), body, {})
    assert first.provider_type == "scheduled"
    assert first.external_id.startswith("scheduled:54321:") and len(first.external_id) == 32
    # an identical re-post is the same event (a retry); another body is another event
    assert SOURCE.identify(SOURCE.parse(body), body, {}) == first
    other = body.replace(b"calendarID=27238", b"calendarID=27239")
    assert SOURCE.identify(SOURCE.parse(other), other, {}).external_id != first.external_id


def test_every_reschedule_post_is_kept_because_a_second_move_has_the_same_body() -> None:
    body = form("rescheduled")
    first = SOURCE.identify(SOURCE.parse(body), body, {})
    second = SOURCE.identify(SOURCE.parse(body), body, {})
    assert first.provider_type == second.provider_type == "rescheduled"
    assert first.external_id != second.external_id
    assert first.external_id.startswith("rescheduled:54321:")


def test_dynamic_webhook_action_names_are_accepted_too() -> None:
    body = b"action=appointment.scheduled&id=54321&calendarID=27238&appointmentTypeID=1"
    assert SOURCE.identify(SOURCE.parse(body), body, {}).provider_type == "scheduled"


def test_an_order_is_stored_but_has_no_lane() -> None:
    body = form("order.completed")
    found = SOURCE.identify(SOURCE.parse(body), body, {})
    assert found.provider_type == "order.completed"
    assert SOURCE.lane_for(found.provider_type) is None
    assert {SOURCE.lane_for(a) for a in ("scheduled", "rescheduled", "canceled", "changed")} == {
        "enrollments"
    }


@pytest.mark.parametrize("body", [b"id=1", b"action=scheduled", b"action=scheduled&id[a]=1"])
def test_a_post_without_action_or_id_is_refused(body: bytes) -> None:
    with pytest.raises(BadPayload):
        SOURCE.identify(SOURCE.parse(body), body, {})


# -- contract and verify --------------------------------------------------------------------------


def test_the_form_meets_its_contract_and_extra_fields_are_drift() -> None:
    event, payload = stored(form("scheduled"))
    contract = SOURCE.contract_for(event.provider_type, payload)
    assert contract is not None
    assert check(contract, payload) == ContractReport()
    assert check(contract, {**payload, "source": "app"}).unknown == ["source"]
    assert check(contract, {**payload, "id": "54321; DROP"}).invalid
    assert check(contract, {"action": "scheduled"}).missing == ["id"]
    assert SOURCE.default_on_unknown_fields == "warn"


def test_changed_is_ignored_before_any_fetch_because_it_duplicates_the_others() -> None:
    event, payload = stored(form("changed"))
    assert SOURCE.verify(ctx(), event, payload) == Verdict(
        "ignore", "changed_duplicates_specific_actions"
    )
    for action in ("scheduled", "rescheduled", "canceled"):
        assert SOURCE.verify(ctx(), *stored(form(action))) is None


# -- canonical bookings -------------------------------------------------------------------------


def test_the_documented_appointment_becomes_a_booking_in_utc_and_the_client_zone() -> None:
    event = canonical("scheduled")
    assert isinstance(event, dict)
    assert (event["type"], event["key"]) == ("booking.created", "acuity:54321")
    assert event["occurred_at"] == "2026-03-01T12:00:00.250000Z"
    assert event["booking"] == {
        "id": "54321",
        "starts_at": "2013-07-02T17:15:00Z",
        "ends_at": "2013-07-02T18:15:00Z",
        "timezone": "America/New_York",
        "local_start": "2013-07-02T13:15:00-04:00",
        "event_name": "Regular Visit",
        "status": "scheduled",
    }
    assert event["contact"] == {
        "email": "bob.mctest@example.com",
        "first_name": "Bob",
        "last_name": "McTest",
        "external_ids": {"acuity_appointment": "54321"},
        "client_id": None,
    }


@pytest.mark.parametrize(
    ("when", "zone", "starts_at", "local_start"),
    [
        # New York leaves summer time on 2026-11-01 at 02:00 EDT
        (
            "2026-10-31T09:00:00-0400",
            "America/New_York",
            "2026-10-31T13:00:00Z",
            "2026-10-31T09:00:00-04:00",
        ),
        (
            "2026-11-01T09:00:00-0500",
            "America/New_York",
            "2026-11-01T14:00:00Z",
            "2026-11-01T09:00:00-05:00",
        ),
        # 01:30 happens twice that night: the offset Acuity sends decides which one
        (
            "2026-11-01T01:30:00-0400",
            "America/New_York",
            "2026-11-01T05:30:00Z",
            "2026-11-01T01:30:00-04:00",
        ),
        (
            "2026-11-01T01:30:00-0500",
            "America/New_York",
            "2026-11-01T06:30:00Z",
            "2026-11-01T01:30:00-05:00",
        ),
        # Paris enters summer time on 2026-03-29; the datetime is rendered in the calendar's
        # zone (New York, already on EDT), the attendee is in Paris: same New York wall clock,
        # a different Paris one on each side of the change
        (
            "2026-03-28T04:30:00-0400",
            "Europe/Paris",
            "2026-03-28T08:30:00Z",
            "2026-03-28T09:30:00+01:00",
        ),
        (
            "2026-03-29T04:30:00-0400",
            "Europe/Paris",
            "2026-03-29T08:30:00Z",
            "2026-03-29T10:30:00+02:00",
        ),
    ],
)
def test_times_are_right_on_both_sides_of_a_dst_change(
    when: str, zone: str, starts_at: str, local_start: str
) -> None:
    event = canonical("scheduled", datetime=when, timezone=zone, duration="90")
    assert isinstance(event, dict)
    booking = event["booking"]
    assert (booking["starts_at"], booking["timezone"], booking["local_start"]) == (
        starts_at,
        zone,
        local_start,
    )
    # 90 minutes of elapsed time, even when the wall clock jumps inside them
    ends = datetime.fromisoformat(booking["ends_at"]) - datetime.fromisoformat(starts_at)
    assert ends == timedelta(minutes=90)


def test_a_reschedule_names_its_new_start_in_its_key() -> None:
    event = canonical("rescheduled", datetime="2026-11-01T09:00:00-0500")
    assert isinstance(event, dict)
    assert event["type"] == "booking.rescheduled"
    assert event["key"] == "acuity:54321:2026-11-01T14:00:00Z"


def test_canceled_maps_to_booking_canceled_and_so_does_a_canceled_appointment() -> None:
    canceled = canonical("canceled", canceled=True)
    late_scheduled = canonical("scheduled", canceled=True)
    assert isinstance(canceled, dict) and isinstance(late_scheduled, dict)
    assert canceled["type"] == late_scheduled["type"] == "booking.canceled"
    assert canceled["key"] == late_scheduled["key"] == "acuity:54321"  # planned once, not twice
    assert canceled["booking"]["status"] == "canceled"


def test_a_cancel_the_appointment_contradicts_is_ignored() -> None:
    assert canonical("canceled", canceled=False) == Verdict("ignore", "appointment_not_canceled")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"datetime": "2013-07-02T10:15:00"}, "naive_datetime"),
        ({"datetime": None}, "no_datetime"),
        ({"timezone": ""}, "no_timezone"),
        ({"timezone": "Atlantis/Central"}, "unknown_timezone"),
    ],
)
def test_an_appointment_without_a_usable_time_is_a_contract_error(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ContractError) as raised:
        canonical("scheduled", **changes)
    assert raised.value.reason == reason


# -- fetch --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    for server, _state in serve_sandbox(0):
        yield server.url


def schedule(sandbox: str) -> bytes:
    answer = requests.post(
        f"{sandbox}/_sandbox/acuity/appointments",
        timeout=5,
        json={
            "user_id": "21110176",
            "api_key": "k",
            "email": "li@example.com",
            "firstName": "Li",
            "lastName": "Wei",
            "timezone": "Asia/Shanghai",
            "start": "2026-06-01T02:00:00Z",
            "calendarTimezone": "America/Los_Angeles",
        },
    )
    answer.raise_for_status()
    return str(answer.json()["webhooks"][0]["body"]).encode()


def test_fetch_reads_the_appointment_with_basic_auth(sandbox: str) -> None:
    event, payload = stored(schedule(sandbox))
    context = ctx(api_base=f"{sandbox}/acuity/api/v1")
    found = SOURCE.fetch(context, event, payload)
    assert found.object_key == f"acuity:appointment:{payload['id']}"
    assert found.version == int(RECEIVED.timestamp() * 1000)  # receipt order: no version exists
    assert found.object["datetime"] == "2026-05-31T19:00:00-0700"
    booking = SOURCE.canonicalize(context, event, payload, found)
    assert isinstance(booking, dict)
    assert booking["booking"]["starts_at"] == "2026-06-01T02:00:00Z"
    assert booking["booking"]["local_start"] == "2026-06-01T10:00:00+08:00"


def test_a_wrong_api_key_is_a_configuration_error(sandbox: str) -> None:
    event, payload = stored(schedule(sandbox))
    with pytest.raises(ConfigurationError) as raised:
        SOURCE.fetch(ctx(api_base=f"{sandbox}/acuity/api/v1", key="wrong"), event, payload)
    assert raised.value.http_status == 401


def test_an_id_that_is_not_a_number_is_never_put_into_a_url() -> None:
    event, payload = stored(b"action=scheduled&id=..%2Fclients")
    with pytest.raises(ContractError):
        SOURCE.fetch(ctx(api_base="http://127.0.0.1:9/acuity/api/v1"), event, payload)
