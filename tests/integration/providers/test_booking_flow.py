"""Bookings through real workers: Calendly and Acuity create, reschedule and cancel across DST changes.

Each webhook is the one the sandbox's provider sends for what the test does there, signed the
provider's way (the signing key and API key are the ones in tests/fixtures/config/30-bookings.toml);
the flows there send every booking to `booking_analytics` (Mixpanel) and new ones to
`booking_email` (Mailchimp list `bookings01`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import requests

from pipeline.signatures.timestamped_hmac import timestamped_hmac_header
from tests.support.db import counts, rows
from tests.support.stack import Stack
from tests.support.waiting import wait_until

CALENDLY_KEY = "calendly_signing_key_current"
ACUITY_ACCOUNT = {"user_id": "21110176", "api_key": "acuity_test_api_key"}


def control(stack: Stack, provider: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(f"{stack.sandbox.url}/_sandbox/{provider}/{path}", json=body, timeout=10)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def post(stack: Stack, source: str, webhook: dict[str, Any]) -> int:
    body = webhook["body"].encode()
    return stack.post_webhook(source, body, webhook["headers"]).status_code


def settled(stack: Stack, expected_events: int) -> None:
    def probe() -> dict[str, int]:
        engine = stack.runtime.engine
        events = counts(
            engine, "SELECT status IN ('received', 'verified'), count(*) FROM events GROUP BY 1"
        )
        open_deliveries = counts(
            engine,
            "SELECT 'open', count(*) FROM deliveries WHERE status NOT IN ('delivered', 'dead')",
        )
        return {
            "events": sum(events.values()),
            "open_events": events.get(True, 0),
            "open_deliveries": open_deliveries.get("open", 0),
        }

    wait_until(
        probe,
        lambda s: s == {"events": expected_events, "open_events": 0, "open_deliveries": 0},
        timeout=90,
    )


def events(stack: Stack) -> list[tuple[Any, ...]]:
    found = rows(
        stack.runtime.engine,
        "SELECT provider_type, status, reason, canonical_type FROM events ORDER BY id",
    )
    return [tuple(r.values()) for r in found]


def bookings(stack: Stack) -> list[dict[str, Any]]:
    found = rows(
        stack.runtime.engine, "SELECT canonical FROM events WHERE canonical IS NOT NULL ORDER BY id"
    )
    return [r["canonical"]["booking"] for r in found]


def delivered(stack: Stack) -> Counter[tuple[str, str]]:
    found = rows(stack.runtime.engine, "SELECT action, status FROM deliveries")
    return Counter((r["action"], r["status"]) for r in found)


def imported(stack: Stack) -> list[tuple[str, str, str, str]]:
    """What Mixpanel holds: (event name, booking start in UTC, attendee zone, local start)."""
    stored = stack.sandbox_state.store("mixpanel", "events").values()
    return sorted(
        (
            e["event"],
            e["properties"]["booking_starts_at"],
            e["properties"]["booking_timezone"],
            e["properties"]["booking_local_start"],
        )
        for e in stored
    )


def get_calls(stack: Stack, provider: str) -> Counter[tuple[str, int]]:
    return Counter(
        (c.method, c.status) for c in stack.sandbox_state.calls if c.provider == provider
    )


def member(stack: Stack, email: str) -> dict[str, Any]:
    members = stack.sandbox_state.store("mailchimp", "list:bookings01").values()
    return next(m for m in members if m["email_address"] == email)


def test_a_calendly_booking_created_rescheduled_and_canceled(live: Stack) -> None:
    # Given Jordan books the day before New York leaves summer time
    booked = control(
        live,
        "calendly",
        "bookings",
        {
            "email": "jordan.lee@example.com",
            "name": "Jordan Lee",
            "timezone": "America/New_York",
            "start_time": "2026-10-31T13:00:00Z",
            "duration_minutes": 60,
            "event_name": "60 Minute Coaching Session",
            "signing_key": CALENDLY_KEY,
        },
    )
    assert post(live, "calendly", booked["webhook"]) == 202
    settled(live, 1)
    # and Calendly's retry of that delivery is acknowledged, not processed again
    assert post(live, "calendly", booked["webhook"]) == 200
    # When Jordan moves it to the same wall-clock hour the next day, after the change
    moved = control(
        live,
        "calendly",
        f"invitees/{booked['invitee']}/reschedule",
        {"start_time": "2026-11-01T14:00:00Z", "signing_key": CALENDLY_KEY},
    )
    assert [post(live, "calendly", w) for w in moved["webhooks"]] == [202, 202]
    settled(live, 3)
    # and then cancels it
    canceled = control(
        live,
        "calendly",
        f"invitees/{moved['invitee']}/cancel",
        {"reason": "travel", "signing_key": CALENDLY_KEY},
    )
    assert post(live, "calendly", canceled["webhook"]) == 202
    settled(live, 4)

    # Then the old half of the reschedule is not a cancellation, everything else is a booking
    assert events(live) == [
        ("invitee.created", "processed", None, "booking.created"),
        ("invitee.canceled", "ignored", "canceled_by_reschedule", None),
        ("invitee.created", "processed", None, "booking.rescheduled"),
        ("invitee.canceled", "processed", None, "booking.canceled"),
    ]
    created, rescheduled, cancellation = bookings(live)
    assert (created["id"], rescheduled["rescheduled_from"]) == (booked["invitee"],) * 2
    assert cancellation["id"] == rescheduled["id"] == moved["invitee"]
    assert [(b["starts_at"], b["timezone"], b["local_start"]) for b in bookings(live)] == [
        ("2026-10-31T13:00:00Z", "America/New_York", "2026-10-31T09:00:00-04:00"),
        ("2026-11-01T14:00:00Z", "America/New_York", "2026-11-01T09:00:00-05:00"),
        ("2026-11-01T14:00:00Z", "America/New_York", "2026-11-01T09:00:00-05:00"),
    ]
    # and each action ran once: three analytics events, one new subscriber
    assert delivered(live) == {
        ("booking_analytics.track", "delivered"): 3,
        ("booking_email.subscribe", "delivered"): 1,
    }
    assert imported(live) == sorted(
        [
            (
                "booking.created",
                "2026-10-31T13:00:00Z",
                "America/New_York",
                "2026-10-31T09:00:00-04:00",
            ),
            (
                "booking.rescheduled",
                "2026-11-01T14:00:00Z",
                "America/New_York",
                "2026-11-01T09:00:00-05:00",
            ),
            (
                "booking.canceled",
                "2026-11-01T14:00:00Z",
                "America/New_York",
                "2026-11-01T09:00:00-05:00",
            ),
        ]
    )
    summary = live.sandbox_state.summary()["providers"]
    assert summary["mixpanel"] == {"effects": {"event.imported": 3}, "duplicates": {}}
    assert summary["mailchimp"] == {"effects": {"member.created": 1}, "duplicates": {}}
    assert member(live, "jordan.lee@example.com")["tags"] == ["booked-call"]
    # and every processed webhook read its invitee and event once each; nothing else was asked
    assert get_calls(live, "calendly") == {("GET", 200): 8}


def test_a_calendly_booking_whose_creation_arrives_after_its_cancellation_books_nothing(
    live: Stack,
) -> None:
    # Given Sam books and cancels at once, and Calendly delivers the cancellation first
    booked = control(
        live,
        "calendly",
        "bookings",
        {
            "email": "sam.ortiz@example.com",
            "name": "Sam Ortiz",
            "timezone": "Europe/Madrid",
            "start_time": "2026-06-10T08:00:00Z",
            "duration_minutes": 30,
            "event_name": "30 Minute Intro Call",
            "signing_key": CALENDLY_KEY,
        },
    )
    canceled = control(
        live,
        "calendly",
        f"invitees/{booked['invitee']}/cancel",
        {"reason": "double booked", "signing_key": CALENDLY_KEY},
    )
    assert post(live, "calendly", canceled["webhook"]) == 202
    settled(live, 1)
    # When the creation gets through afterwards
    assert post(live, "calendly", booked["webhook"]) == 202
    settled(live, 2)
    # Then it books nothing: no new subscriber, only the cancellation is tracked
    assert events(live) == [
        ("invitee.canceled", "processed", None, "booking.canceled"),
        ("invitee.created", "ignored", "canceled_before_processing", None),
    ]
    assert delivered(live) == {("booking_analytics.track", "delivered"): 1}
    assert "mailchimp" not in live.sandbox_state.summary()["providers"]


def test_an_acuity_appointment_scheduled_rescheduled_and_canceled(live: Stack) -> None:
    # Given Li, in Paris, books a New York calendar the day before Paris moves to summer time
    booked = control(
        live,
        "acuity",
        "appointments",
        {
            **ACUITY_ACCOUNT,
            "email": "li.wei@example.com",
            "firstName": "Li",
            "lastName": "Wei",
            "timezone": "Europe/Paris",
            "calendarTimezone": "America/New_York",
            "start": "2026-03-28T08:30:00Z",
            "duration": 45,
            "type": "Portfolio Review",
        },
    )
    # (Acuity posts `scheduled` and, as the account also subscribes to it, `changed`)
    assert [post(live, "acuity", w) for w in booked["webhooks"]] == [202, 202]
    settled(live, 2)
    assert post(live, "acuity", booked["webhooks"][0]) == 200  # an identical re-post: a retry
    # When Li moves it a day later, after the change, and Acuity posts the reschedule twice
    moved = control(
        live, "acuity", f"appointments/{booked['id']}/reschedule", {"start": "2026-03-29T08:30:00Z"}
    )
    rescheduled, changed = moved["webhooks"]
    assert [post(live, "acuity", w) for w in (rescheduled, changed, rescheduled)] == [202, 200, 202]
    settled(live, 4)
    # and then cancels it
    canceled, changed = control(live, "acuity", f"appointments/{booked['id']}/cancel", {})[
        "webhooks"
    ]
    assert [post(live, "acuity", w) for w in (canceled, changed)] == [202, 200]
    settled(live, 5)

    # Then `changed` is ignored (once: its later copies are byte-identical duplicates)
    assert events(live) == [
        ("scheduled", "processed", None, "booking.created"),
        ("changed", "ignored", "changed_duplicates_specific_actions", None),
        ("rescheduled", "processed", None, "booking.rescheduled"),
        ("rescheduled", "processed", None, "booking.rescheduled"),
        ("canceled", "processed", None, "booking.canceled"),
    ]
    # and the times are the attendee's own, right on both sides of the change
    assert [
        (b["starts_at"], b["ends_at"], b["timezone"], b["local_start"]) for b in bookings(live)
    ] == [
        (
            "2026-03-28T08:30:00Z",
            "2026-03-28T09:15:00Z",
            "Europe/Paris",
            "2026-03-28T09:30:00+01:00",
        ),
        (
            "2026-03-29T08:30:00Z",
            "2026-03-29T09:15:00Z",
            "Europe/Paris",
            "2026-03-29T10:30:00+02:00",
        ),
        (
            "2026-03-29T08:30:00Z",
            "2026-03-29T09:15:00Z",
            "Europe/Paris",
            "2026-03-29T10:30:00+02:00",
        ),
        (
            "2026-03-29T08:30:00Z",
            "2026-03-29T09:15:00Z",
            "Europe/Paris",
            "2026-03-29T10:30:00+02:00",
        ),
    ]
    # and the repeated reschedule planned nothing new: every action ran once
    assert delivered(live) == {
        ("booking_analytics.track", "delivered"): 3,
        ("booking_email.subscribe", "delivered"): 1,
    }
    assert imported(live) == sorted(
        [
            (
                "booking.created",
                "2026-03-28T08:30:00Z",
                "Europe/Paris",
                "2026-03-28T09:30:00+01:00",
            ),
            (
                "booking.rescheduled",
                "2026-03-29T08:30:00Z",
                "Europe/Paris",
                "2026-03-29T10:30:00+02:00",
            ),
            (
                "booking.canceled",
                "2026-03-29T08:30:00Z",
                "Europe/Paris",
                "2026-03-29T10:30:00+02:00",
            ),
        ]
    )
    summary = live.sandbox_state.summary()["providers"]
    assert summary["mixpanel"] == {"effects": {"event.imported": 3}, "duplicates": {}}
    assert summary["mailchimp"] == {"effects": {"member.created": 1}, "duplicates": {}}
    assert member(live, "li.wei@example.com")["merge_fields"] == {"FNAME": "Li", "LNAME": "Wei"}
    # and only the four actionable webhooks read the appointment: `changed` cost no API call
    assert get_calls(live, "acuity") == {("GET", 200): 4}


def test_a_signed_calendly_webhook_pointing_at_another_host_is_dead_lettered_unread(
    live: Stack,
) -> None:
    # Given a genuine booking whose webhook (correctly signed) names an invitee on another host
    booked = control(
        live,
        "calendly",
        "bookings",
        {
            "email": "mallory@example.com",
            "timezone": "Europe/Berlin",
            "start_time": "2026-06-01T08:00:00Z",
            "signing_key": CALENDLY_KEY,
        },
    )
    document = json.loads(booked["webhook"]["body"])
    path = document["payload"]["uri"].split("/calendly", 1)[1]
    document["payload"]["uri"] = f"http://attacker.invalid/calendly{path}"
    body = json.dumps(document).encode()
    headers = {
        "Content-Type": "application/json",
        "Calendly-Webhook-Signature": timestamped_hmac_header(CALENDLY_KEY, body, int(time.time())),
    }
    # When it arrives
    assert live.post_webhook("calendly", body, headers).status_code == 202
    settled(live, 1)
    # Then it fails as a contract error, visibly, and nothing was read from anywhere
    assert events(live) == [("invitee.created", "failed", "foreign_uri", None)]
    letters = rows(live.runtime.engine, "SELECT step, failure_class, reason FROM dead_letters")
    assert letters == [{"step": "fetch", "failure_class": "contract", "reason": "foreign_uri"}]
    assert not get_calls(live, "calendly")
    assert not delivered(live)
