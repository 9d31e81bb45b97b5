"""Calendly as a source: identity, contracts, the reschedule pair, time zones and the URI rule.

Fixtures (tests/fixtures/calendly/) copy Calendly's published Webhook Payload field for field; the
reschedule pair spans New York's return to standard time (2026-11-01) and the booking in
`invitee.created.json` lands right after Paris moves to summer time (2026-03-29).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from pipeline.config.load import load_config
from pipeline.config.model import SourceConfig
from pipeline.errors import BadPayload, ConfigurationError, ContractError
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, SourceContext, Verdict
from pipeline.providers.calendly.source import SOURCE, external_id
from schemas.canonical import validate_canonical
from schemas.contracts.base import check
from tests.support.contexts import source_config, source_context
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT
from tests.support.stack import CONFIG, serve_sandbox

FIXTURES = FIXTURE_ROOT / "calendly"
API = "https://api.calendly.com"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6InRlc3QifQ.c2lnbmF0dXJl"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def source(api_base: str = API, token: str = TOKEN) -> SourceConfig:
    return source_config(
        SOURCE,
        signing_secrets=("k",),
        api_base=api_base,
        tolerance_seconds=180,
        max_body_bytes=262144,
        options={"api_token": token},
    )


class NoNetwork(requests.Session):
    """A session that fails the test if anything tries to connect."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"no request may be made, got {args!r}")


def ctx(api_base: str = API, http: requests.Session | None = None) -> SourceContext:
    return source_context(source(api_base), http=http or NoNetwork(), now=0.0)


def stored(webhook: dict[str, Any]) -> StoredEvent:
    body = json.dumps(webhook).encode()
    found = SOURCE.identify(webhook, body, {})
    return StoredEvent(
        id=1,
        source="calendly",
        provider="calendly",
        external_id=found.external_id,
        provider_type=found.provider_type,
        lane="enrollments",
        body=body,
        headers={},
        received_at=datetime(2026, 3, 20, 9, 15, 3, tzinfo=UTC),
        status="verified",
    )


def fetched_from(webhook: dict[str, Any]) -> Fetched:
    """What the API answers for the webhook's invitee: the invitee, and its scheduled event."""
    invitee = {k: v for k, v in webhook["payload"].items() if k != "scheduled_event"}
    uuid = invitee["uri"].rsplit("/", 1)[-1]
    return Fetched(
        {"invitee": invitee, "event": webhook["payload"]["scheduled_event"]},
        f"calendly:invitee:{uuid}",
        0,
    )


def canonical(webhook: dict[str, Any]) -> dict[str, Any] | Verdict:
    result = SOURCE.canonicalize(ctx(), stored(webhook), webhook, fetched_from(webhook))
    if isinstance(result, dict):
        validate_canonical(result)
    return result


# -- identity and configuration --------------------------------------------------------------


def test_the_external_id_is_derived_from_event_invitee_and_created_at() -> None:
    webhook = fixture("invitee.created.json")
    found = SOURCE.identify(webhook, b"", {})
    assert found.provider_type == "invitee.created"
    assert found.external_id == external_id(
        "invitee.created", webhook["payload"]["uri"], "2026-03-20T09:15:02.000000Z"
    )
    assert found.external_id.startswith("invitee.created:") and len(found.external_id) == 56
    # a retry of the same delivery is the same event; the same invitee canceled is another
    assert SOURCE.identify(copy.deepcopy(webhook), b"", {}) == found
    assert SOURCE.identify(fixture("invitee.canceled.json"), b"", {}) != found


def test_the_two_halves_of_a_reschedule_are_two_events() -> None:
    old = SOURCE.identify(fixture("reschedule.invitee.canceled.json"), b"", {})
    new = SOURCE.identify(fixture("reschedule.invitee.created.json"), b"", {})
    assert old.external_id != new.external_id
    assert SOURCE.lane_for(old.provider_type) == SOURCE.lane_for(new.provider_type) == "enrollments"


@pytest.mark.parametrize(
    "broken",
    [
        [],
        {"event": 1},
        {"event": "invitee.created", "created_at": "x"},
        {"event": "invitee.created", "payload": {"uri": "u"}},
    ],
)
def test_a_webhook_without_event_uri_or_created_at_is_refused(broken: Any) -> None:
    with pytest.raises(BadPayload):
        SOURCE.identify(broken, b"", {})


def test_a_type_we_do_not_map_is_identified_by_its_body_and_has_no_lane() -> None:
    body = b'{"event": "event_type.updated", "created_by": "u", "payload": {}}'
    found = SOURCE.identify(json.loads(body), body, {})
    assert found.provider_type == "event_type.updated"
    assert found.external_id.startswith("event_type.updated:")
    assert SOURCE.lane_for(found.provider_type) is None


def test_the_test_fragment_configures_three_minutes_and_the_sandbox() -> None:
    config = load_config(CONFIG, {"SANDBOX_PORT": "8100"})
    calendly = config.sources["calendly"]
    assert calendly.tolerance_seconds == 180
    assert calendly.on_unknown_fields == "warn" == SOURCE.default_on_unknown_fields
    assert calendly.api_base == "http://127.0.0.1:8100/calendly"
    assert all(flow.sources for flow in config.flows if flow.on.startswith("booking"))


# -- contracts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "invitee.created.json",
        "invitee.canceled.json",
        "reschedule.invitee.canceled.json",
        "reschedule.invitee.created.json",
    ],
)
def test_every_fixture_meets_its_contract_exactly(name: str) -> None:
    webhook = fixture(name)
    contract = SOURCE.contract_for(webhook["event"], webhook)
    assert contract is not None
    report = check(contract, webhook)
    assert (report.missing, report.invalid, report.unknown) == ([], [], [])


def test_a_new_field_is_drift_and_a_missing_zone_breaks_the_contract() -> None:
    webhook = fixture("invitee.created.json")
    webhook["payload"]["locale"] = "fr"
    contract = SOURCE.contract_for("invitee.created", webhook)
    assert contract is not None
    report = check(contract, webhook)
    assert report.unknown == ["payload.locale"] and not report.broken
    del webhook["payload"]["timezone"]
    assert check(contract, webhook).missing == ["payload.timezone"]


# -- canonical bookings -----------------------------------------------------------------------


def test_a_booking_right_after_paris_moves_to_summer_time() -> None:
    event = canonical(fixture("invitee.created.json"))
    assert isinstance(event, dict)
    assert event["type"] == "booking.created"
    assert event["key"] == "calendly:c41e7a92-0b6d-4f1a-8e3c-5d7f9a1b3c01"
    assert event["occurred_at"] == "2026-03-20T09:15:02Z"
    assert event["booking"] == {
        "id": "c41e7a92-0b6d-4f1a-8e3c-5d7f9a1b3c01",
        "starts_at": "2026-03-29T08:00:00Z",
        "ends_at": "2026-03-29T08:30:00Z",
        "timezone": "Europe/Paris",
        "local_start": "2026-03-29T10:00:00+02:00",
        "event_name": "30 Minute Discovery Call",
        "status": "active",
        "rescheduled_from": None,
    }
    assert event["contact"] == {
        "email": "Camille.Durand@example.com",
        "first_name": "Camille",
        "last_name": "Durand",
        "external_ids": {"calendly_invitee": "c41e7a92-0b6d-4f1a-8e3c-5d7f9a1b3c01"},
        "client_id": None,
    }


@pytest.mark.parametrize(
    ("zone", "start", "local_start"),
    [
        ("Europe/Paris", "2026-03-28T09:00:00.000000Z", "2026-03-28T10:00:00+01:00"),
        ("Europe/Paris", "2026-03-29T08:00:00.000000Z", "2026-03-29T10:00:00+02:00"),
        ("America/New_York", "2026-10-31T13:00:00.000000Z", "2026-10-31T09:00:00-04:00"),
        ("America/New_York", "2026-11-01T14:00:00.000000Z", "2026-11-01T09:00:00-05:00"),
        # the hour New York lives twice: the same wall clock, two instants, two offsets
        ("America/New_York", "2026-11-01T05:30:00.000000Z", "2026-11-01T01:30:00-04:00"),
        ("America/New_York", "2026-11-01T06:30:00.000000Z", "2026-11-01T01:30:00-05:00"),
    ],
)
def test_local_start_is_right_on_both_sides_of_a_dst_change(
    zone: str, start: str, local_start: str
) -> None:
    webhook = fixture("invitee.created.json")
    webhook["payload"]["timezone"] = zone
    webhook["payload"]["scheduled_event"]["start_time"] = start
    event = canonical(webhook)
    assert isinstance(event, dict)
    assert event["booking"]["starts_at"] == start.replace(".000000Z", "Z")
    assert (event["booking"]["timezone"], event["booking"]["local_start"]) == (zone, local_start)


def test_the_canceled_half_of_a_reschedule_is_not_a_cancellation() -> None:
    assert canonical(fixture("reschedule.invitee.canceled.json")) == Verdict(
        "ignore", "canceled_by_reschedule"
    )


def test_the_created_half_of_a_reschedule_is_booking_rescheduled() -> None:
    event = canonical(fixture("reschedule.invitee.created.json"))
    assert isinstance(event, dict)
    assert event["type"] == "booking.rescheduled"
    assert event["booking"]["rescheduled_from"] == "d52f8b03-1c7e-4a2b-9f4d-6e8a0b2c4d02"
    assert event["booking"]["starts_at"] == "2026-11-01T14:00:00Z"
    assert event["booking"]["local_start"] == "2026-11-01T09:00:00-05:00"
    assert event["contact"]["first_name"] == "Jordan"  # from `name`: the type has no split fields


def test_a_plain_cancellation_is_booking_canceled_about_the_same_booking() -> None:
    created, canceled = (
        canonical(fixture("invitee.created.json")),
        canonical(fixture("invitee.canceled.json")),
    )
    assert isinstance(created, dict) and isinstance(canceled, dict)
    assert canceled["type"] == "booking.canceled"
    assert canceled["key"] == created["key"]
    assert canceled["booking"]["status"] == "canceled"


def test_a_creation_processed_after_its_cancellation_books_nothing() -> None:
    # Given the invitee.created webhook, processed when the invitee already canceled
    webhook = fixture("invitee.created.json")
    now = copy.deepcopy(webhook)
    now["payload"].update(status="canceled", updated_at="2026-03-20T10:00:00.000000Z")
    # When it is mapped, Then it is ignored: the cancellation is the booking's last word
    result = SOURCE.canonicalize(ctx(), stored(webhook), webhook, fetched_from(now))
    assert result == Verdict("ignore", "canceled_before_processing")


def test_an_unknown_zone_is_a_contract_error() -> None:
    webhook = fixture("invitee.created.json")
    webhook["payload"]["timezone"] = "Mars/Olympus_Mons"
    with pytest.raises(ContractError) as raised:
        canonical(webhook)
    assert raised.value.reason == "unknown_timezone"


# -- fetch: only the configured origin, uuids validated ---------------------------------------


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("https://evil.example/scheduled_events/E1/invitees/I1", "foreign_uri"),
        ("http://api.calendly.com/scheduled_events/E1/invitees/I1", "foreign_uri"),
        ("https://api.calendly.com.evil.example/scheduled_events/E1/invitees/I1", "foreign_uri"),
        ("https://api.calendly.com@evil.example/scheduled_events/E1/invitees/I1", "foreign_uri"),
        ("https://api.calendly.com:8443/scheduled_events/E1/invitees/I1", "foreign_uri"),
        ("https://api.calendly.com/scheduled_events/E1/invitees/../../users/me", "bad_invitee_uri"),
        ("https://api.calendly.com/scheduled_events/E1/invitees/I1?next=x", "bad_uri"),
        ("https://api.calendly.com/users/me", "bad_invitee_uri"),
    ],
)
def test_a_uri_the_payload_chose_elsewhere_is_never_followed(uri: str, reason: str) -> None:
    webhook = fixture("invitee.created.json")
    webhook["payload"]["uri"] = uri
    webhook["payload"]["event"] = f"{API}/scheduled_events/E1"
    with pytest.raises(ContractError) as raised:
        SOURCE.fetch(ctx(), stored(webhook), webhook)  # NoNetwork: nothing was requested
    assert raised.value.reason == reason


def test_an_invitee_of_another_event_is_refused_before_any_request() -> None:
    webhook = fixture("invitee.created.json")
    webhook["payload"]["event"] = f"{API}/scheduled_events/SOMETHING-ELSE"
    with pytest.raises(ContractError) as raised:
        SOURCE.fetch(ctx(), stored(webhook), webhook)
    assert raised.value.reason == "event_mismatch"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    for server, _state in serve_sandbox(0):
        yield server.url


def book(sandbox: str) -> dict[str, Any]:
    answer = requests.post(
        f"{sandbox}/_sandbox/calendly/bookings",
        timeout=5,
        json={
            "email": "ana@example.com",
            "name": "Ana Lima",
            "timezone": "America/Sao_Paulo",
            "start_time": "2026-05-04T13:00:00Z",
            "signing_key": "k",
        },
    )
    answer.raise_for_status()
    webhook: dict[str, Any] = json.loads(answer.json()["webhook"]["body"])
    return webhook


def test_fetch_reads_the_invitee_and_its_event_from_the_configured_api(sandbox: str) -> None:
    webhook = book(sandbox)
    context = source_context(source(f"{sandbox}/calendly"), now=0.0)
    found = SOURCE.fetch(context, stored(webhook), webhook)
    invitee = webhook["payload"]["uri"].rsplit("/", 1)[-1]
    assert found.object_key == f"calendly:invitee:{invitee}"
    assert found.object["invitee"]["uri"] == webhook["payload"]["uri"]
    assert found.object["event"]["start_time"] == "2026-05-04T13:00:00.000000Z"
    updated = datetime.fromisoformat(found.object["invitee"]["updated_at"])
    assert found.version == int(updated.timestamp() * 1000)
    event = SOURCE.canonicalize(context, stored(webhook), webhook, found)
    assert isinstance(event, dict)
    assert event["booking"]["local_start"] == "2026-05-04T10:00:00-03:00"


def test_a_refused_token_is_a_configuration_error(sandbox: str) -> None:
    webhook = book(sandbox)
    context = source_context(source(f"{sandbox}/calendly", token="not-a-jwt"), now=0.0)
    with pytest.raises(ConfigurationError) as raised:
        SOURCE.fetch(context, stored(webhook), webhook)
    assert raised.value.http_status == 401
