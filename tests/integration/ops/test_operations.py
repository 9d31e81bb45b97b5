"""From "a buyer says she has no access" to a safe replay, through the admin API and real workers.

A purchase whose enrollment the course platform refuses (403) is dead-lettered; it is found by
the buyer's e-mail and by its payment id, its trace shows the 403, a plan by filter counts
exactly it, executing the plan after the fix enrolls her once, and executing again or
redelivering changes nothing at the destination. Each step leaves an audit row.
"""

from __future__ import annotations

from typing import Any

import requests

from devtools.sandbox.state import Fault
from tests.integration.test_delivery_faults import effects, no_duplicates, purchase
from tests.support.db import rows, scalar
from tests.support.stack import ADMIN_TOKEN, Stack
from tests.support.waiting import wait_until

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def api(stack: Stack, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, f"{stack.receiver.url}/api{path}", headers=AUTH, timeout=30, **kwargs
    )


def dead_enrollments(stack: Stack) -> int:
    found: int = scalar(
        stack.runtime.engine,
        "SELECT count(*) FROM dead_letters d JOIN deliveries dl ON dl.id = d.delivery_id "
        "WHERE dl.action = 'courses.enroll' AND d.status = 'open'",
    )
    return found


def enrolled(stack: Stack) -> int:
    found: int = effects(stack).get("thinkific", {}).get("effects", {}).get("enrollment.created", 0)
    return found


def plan_finished(stack: Stack, plan_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: api(stack, "GET", f"/replays/{plan_id}").json(),
        lambda seen: seen["status"] == "done",
        timeout=60,
    )


def test_a_refused_enrollment_is_found_traced_and_replayed_once(live: Stack) -> None:
    # Given the course platform refusing every call with 403 (a revoked API key)
    live.sandbox_state.faults["thinkific"] = Fault(status=403)
    purchase(live, 1)
    wait_until(lambda: dead_enrollments(live), lambda n: n == 1, timeout=60)
    purchased = rows(
        live.runtime.engine,
        "SELECT id, canonical->'contact'->>'email' AS email, "
        "canonical->'purchase'->>'payment_id' AS payment_id "
        "FROM events WHERE canonical_type = 'purchase.completed'",
    )[0]
    event_id = purchased["id"]

    # When the operator searches by the buyer's e-mail (typed differently) and by the payment id
    by_email = api(live, "GET", "/events", params={"email": purchased["email"].upper()}).json()
    by_payment = api(live, "GET", "/events", params={"payment_id": purchased["payment_id"]}).json()
    # Then both find the purchase
    assert [e["id"] for e in by_email["data"]] == [event_id]
    assert [e["id"] for e in by_payment["data"]] == [event_id]
    assert by_email["data"][0]["deliveries"]["dead"] == 1

    # And its trace shows the refused attempt, with the e-mail masked
    trace = api(live, "GET", f"/events/{event_id}")
    assert trace.status_code == 200
    document = trace.json()
    enroll = next(d for d in document["deliveries"] if d["action"] == "courses.enroll")
    assert enroll["status"] == "dead"
    assert {a["http_status"] for a in enroll["attempt_log"]} == {403}
    assert document["dead_letters"][0]["failure_class"] == "configuration"
    assert purchased["email"] not in trace.text
    assert document["request"]["secret_matched"] == "signing_secrets[0]"
    assert document["event"]["trace_id"]

    # When a plan is made by filter: it counts exactly that enrollment and does nothing
    planned = api(
        live,
        "POST",
        "/replays",
        json={"filter": {"email": purchased["email"]}, "destination": "courses"},
    )
    assert planned.status_code == 201, planned.text
    plan = planned.json()
    assert plan["count"] == 1
    assert plan["by_destination"] == {"courses": 1}
    assert plan["by_failure_class"] == {"configuration": 1}
    assert plan["sample_event_ids"] == [event_id]
    assert plan["provider_calls"] == {"courses": 3}
    assert enrolled(live) == 0

    # And a second purchase refused after the plan is not in it (the set is frozen)
    purchase(live, 1)
    wait_until(lambda: dead_enrollments(live), lambda n: n == 2, timeout=60)

    # When the key is fixed and the plan executed
    live.sandbox_state.faults.pop("thinkific")
    executed = api(
        live, "POST", f"/replays/{plan['plan_id']}/execute", json={"reason": "API key rotated"}
    )
    assert executed.status_code == 202, executed.text
    assert executed.json()["already"] is False
    done = plan_finished(live, plan["plan_id"])
    # Then the buyer is enrolled once, and only the planned item ran
    assert done["by_status"] == {"done": 1} and done["by_outcome"] == {"replayed": 1}
    wait_until(lambda: enrolled(live), lambda n: n == 1, timeout=60)
    assert dead_enrollments(live) == 1  # the later purchase's, untouched

    # When the plan is executed again, and the event's actions are redelivered
    again = api(live, "POST", f"/replays/{plan['plan_id']}/execute", json={"reason": "again"})
    assert again.status_code == 202 and again.json()["already"] is True
    redeliver = api(live, "POST", "/replays", json={"mode": "redeliver", "event_ids": [event_id]})
    assert redeliver.json()["count"] == 3
    api(live, "POST", f"/replays/{redeliver.json()['plan_id']}/execute", json={"reason": "check"})
    redelivered = plan_finished(live, redeliver.json()["plan_id"])
    # Then nothing changed at the destination: every action was already delivered
    assert redelivered["by_outcome"] == {"already_delivered": 3}
    assert enrolled(live) == 1
    no_duplicates(live)

    # And every step left an audit row naming the token, the plan and the reason
    audit = api(live, "GET", "/audit").json()["data"]
    actions = [(row["action"], row["plan_id"]) for row in reversed(audit)]
    assert actions == [
        ("replay.plan", plan["plan_id"]),
        ("replay.execute", plan["plan_id"]),
        ("replay.execute", plan["plan_id"]),
        ("replay.plan", redeliver.json()["plan_id"]),
        ("replay.execute", redeliver.json()["plan_id"]),
    ]
    assert {row["actor"] for row in audit} == {"admin"}
    assert audit[-2]["reason"] == "API key rotated"
    # and the trace lists the replays and audit rows that touched the event
    final = api(live, "GET", f"/events/{event_id}").json()
    assert {r["plan_id"] for r in final["replays"]} == {
        plan["plan_id"],
        redeliver.json()["plan_id"],
    }
    assert len(final["audit"]) == 4


def test_one_event_replayed_from_fetch_plans_nothing_twice(live: Stack) -> None:
    purchase(live, 1)
    wait_until(
        lambda: scalar(
            live.runtime.engine, "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
        ),
        lambda n: n == 3,
        timeout=60,
    )
    event_id = scalar(
        live.runtime.engine, "SELECT id FROM events WHERE canonical_type = 'purchase.completed'"
    )
    answer = api(live, "POST", f"/events/{event_id}/replay", json={"from": "fetch"})
    assert answer.status_code == 202, answer.text
    done = plan_finished(live, answer.json()["plan_id"])
    assert done["by_outcome"] == {"refetched": 1}
    wait_until(
        lambda: scalar(
            live.runtime.engine,
            "SELECT count(*) FROM event_steps WHERE event_id = :id AND step = 'fetch'",
            id=event_id,
        ),
        lambda n: n == 2,
        timeout=60,
    )
    # the event was fetched and processed again; its actions kept their keys
    assert scalar(live.runtime.engine, "SELECT count(*) FROM deliveries") == 3
    assert enrolled(live) == 1
    no_duplicates(live)


def test_pause_and_resume_are_audited_and_shown(live: Stack) -> None:
    paused = api(live, "POST", "/destinations/courses/pause", json={"reason": "maintenance"})
    assert paused.status_code == 200 and paused.json()["paused"] is True
    listed = {d["name"]: d for d in api(live, "GET", "/destinations").json()["data"]}
    assert listed["courses"]["paused"] is True and listed["email"]["paused"] is False
    resumed = api(live, "POST", "/destinations/courses/resume", json={})
    assert resumed.json() == {"name": "courses", "paused": False, "released": 0}
    audit = api(live, "GET", "/audit").json()["data"]
    assert [(a["action"], a["target"]) for a in audit] == [
        ("destination.resume", "courses"),
        ("destination.pause", "courses"),
    ]
    assert api(live, "POST", "/destinations/nope/pause", json={}).status_code == 404


def test_status_names_each_lane_with_its_oldest_age(live: Stack) -> None:
    answer = api(live, "GET", "/status")
    assert answer.status_code == 200, answer.text
    lanes = {lane["name"]: lane for lane in answer.json()["lanes"]}
    assert {"payments", "enrollments", "analytics"} <= set(lanes)
    assert all(lane["oldest_age_seconds"] is not None for lane in lanes.values())
    assert {s["name"] for s in answer.json()["servers"]} >= {"PostgreSQL", "Redis"}
