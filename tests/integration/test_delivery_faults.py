"""The delivery engine under injected faults, through real workers: every action lands once."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import requests

from devtools import simulate
from devtools.sandbox.state import Fault
from pipeline.delivery.deadletter import replay
from tests.support.db import counts, rows, scalar
from tests.support.stack import Stack
from tests.support.stripe_events import SECRET
from tests.support.waiting import wait_until

PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"


def purchase(stack: Stack, count: int, *, source: str = "stripe", redeliver: float = 0.0) -> None:
    events = simulate.create_purchases(stack.sandbox.url, count, price=PRICE, amount=4900)
    deliveries = simulate.plan_deliveries(events, redeliver, seed=3)
    report = simulate.send_all(
        f"{stack.receiver.url}/webhooks/{source}",
        deliveries,
        simulate.stripe_signer(SECRET),
        rate=0,
        concurrency=4,
    )
    assert report.statuses[202] == count, report.as_dict()


def deliveries(stack: Stack) -> dict[str, int]:
    return counts(stack.runtime.engine, "SELECT status, count(*) FROM deliveries GROUP BY status")


def all_delivered(stack: Stack, total: int, timeout: float = 90) -> None:
    wait_until(
        lambda: deliveries(stack), lambda seen: seen.get("delivered") == total, timeout=timeout
    )


def effects(stack: Stack) -> dict[str, Any]:
    found: dict[str, Any] = stack.sandbox_state.summary()["providers"]
    return found


def no_duplicates(stack: Stack) -> None:
    for provider, summary in effects(stack).items():
        assert summary["duplicates"] == {}, provider


def attempt_outcomes(stack: Stack, action: str) -> Counter[str]:
    found = rows(
        stack.runtime.engine,
        "SELECT a.outcome, a.http_status FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
        "WHERE d.action = :action",
        action=action,
    )
    return Counter(f"{r['outcome']}:{r['http_status']}" for r in found)


def test_500s_for_a_while_are_retried_and_every_action_lands_once(live: Stack) -> None:
    # Given Thinkific answering 500 to everything for three seconds
    live.sandbox_state.faults["thinkific"] = Fault(status=500, until=time.time() + 3)
    # When ten purchases come in
    purchase(live, 10)
    # Then every action is delivered, the enrollments after retries, and nothing twice
    all_delivered(live, 30)
    assert effects(live)["thinkific"]["effects"]["enrollment.created"] == 10
    no_duplicates(live)
    outcomes = attempt_outcomes(live, "courses.enroll")
    assert outcomes["retry:500"] >= 5 and outcomes["delivered:201"] == 10  # 5 opens the circuit
    # and the other destinations of the same events were never held back by it
    assert attempt_outcomes(live, "email.subscribe") == Counter({"delivered:204": 10})


def test_a_blip_of_eight_500s_and_three_429s_costs_seconds_not_minutes(live: Stack) -> None:
    # Given the course platform answering eight 500s in a row, then three 429s (Retry-After: 1),
    # during a burst of 40 purchases: a ten-second hiccup
    live.sandbox_state.faults["thinkific"] = Fault(sequence=[500] * 8 + [429] * 3, retry_after=1)
    # When the burst comes in
    purchase(live, 40)
    # Then every enrollment lands within 90 s of the first error (the breaker never opened: eight
    # failures are below its minimum volume, the 429s only paused the workers), each once
    all_delivered(live, 120, timeout=90)
    assert effects(live)["thinkific"]["effects"]["enrollment.created"] == 40
    no_duplicates(live)
    outcomes = attempt_outcomes(live, "courses.enroll")
    assert outcomes["retry:500"] == 8 and outcomes["retry:429"] == 3
    assert scalar(live.runtime.engine, "SELECT count(*) FROM circuit_transitions") == 0


def test_a_429_storm_with_retry_after_pauses_every_worker_then_resumes(live: Stack) -> None:
    live.sandbox_state.faults["mailchimp"] = Fault(status=429, retry_after=1, until=time.time() + 2)
    purchase(live, 10)
    all_delivered(live, 30)
    no_duplicates(live)
    assert effects(live)["mailchimp"]["effects"]["member.created"] == 10
    outcomes = attempt_outcomes(live, "email.subscribe")
    assert outcomes["retry:429"] >= 1 and outcomes["delivered:204"] == 10
    # the pause was shared: far fewer 429s than one per delivery per second of storm
    assert outcomes["retry:429"] < 30


def test_hung_connections_time_out_and_the_retry_does_not_enroll_twice(live: Stack) -> None:
    # Given Thinkific hanging 3 s per request (our timeout is 2 s) for a while: the request we gave
    # up on still creates the user or the enrollment after we stopped waiting
    live.sandbox_state.faults["thinkific"] = Fault(hang_seconds=3, until=time.time() + 4)
    purchase(live, 3)
    all_delivered(live, 9, timeout=120)
    thinkific = effects(live)["thinkific"]
    assert thinkific["effects"]["enrollment.created"] == 3
    assert thinkific["duplicates"] == {}  # look-before-create found what the timed-out call made
    # the timeouts were recorded as sent with an unknown outcome
    assert attempt_outcomes(live, "courses.enroll")["unknown:None"] >= 1


def test_a_destination_down_for_a_while_opens_its_circuit_and_held_work_is_released(
    live: Stack,
) -> None:
    # Given Thinkific down (503) long enough for its circuit to open (10 calls, all failing)
    live.sandbox_state.faults["thinkific"] = Fault(status=503)
    purchase(live, 12)
    wait_until(lambda: deliveries(live), lambda s: s.get("held", 0) >= 1, timeout=60)
    # the rest of each event goes out meanwhile
    by_action = "SELECT action, count(*) FROM deliveries WHERE status = 'delivered' GROUP BY 1"
    delivered = wait_until(
        lambda: counts(live.runtime.engine, by_action),
        lambda s: s == {"email.subscribe": 12, "analytics.track": 12},
        timeout=60,
    )
    assert "courses.enroll" not in delivered
    # When it comes back
    del live.sandbox_state.faults["thinkific"]
    # Then Beat's prober lets probes through, the first success closes the circuit and
    # everything held goes out once
    all_delivered(live, 36, timeout=90)
    assert effects(live)["thinkific"]["effects"]["enrollment.created"] == 12
    no_duplicates(live)
    assert scalar(live.runtime.engine, "SELECT count(*) FROM dead_letters") == 0
    # and the breaker's life is there for an operator to read: opened, probed, closed
    states = [
        r["to_state"]
        for r in rows(live.runtime.engine, "SELECT to_state FROM circuit_transitions ORDER BY id")
    ]
    assert states[0] == "opened" and states[-1] == "closed" and "half_open" in states


def test_a_rejected_action_is_dead_lettered_with_its_trace_and_a_replay_completes_it_once(
    live: Stack,
) -> None:
    # Given a Mailchimp key the provider no longer accepts
    key = "0123456789abcdef0123456789abcdef-us1"
    live.sandbox_state.store("mailchimp", "revoked")[key] = True
    purchase(live, 2)
    wait_until(lambda: deliveries(live), lambda s: s.get("dead") == 2 and s.get("delivered") == 4)
    dead = rows(
        live.runtime.engine,
        "SELECT id, step, failure_class, reason, trace, payload, fetched "
        "FROM dead_letters ORDER BY id",
    )
    assert [(d["step"], d["failure_class"], d["reason"]) for d in dead] == [
        ("deliver:email.subscribe", "configuration", "http_401")
    ] * 2
    assert (
        "ConfigurationError" in dead[0]["trace"]
        and dead[0]["payload"]["type"] == "purchase.completed"
    )
    assert dead[0]["fetched"]["object"] == "checkout.session"
    assert "@" not in dead[0]["trace"]  # no raw e-mail in the trace
    # When the creator fixes the key and replays, twice
    del live.sandbox_state.store("mailchimp", "revoked")[key]
    assert [replay(live.runtime, d["id"]).outcome for d in dead] == ["replayed", "replayed"]
    all_delivered(live, 6)
    assert [replay(live.runtime, d["id"]).outcome for d in dead] == ["already_delivered"] * 2
    # Then each member was created once
    assert effects(live)["mailchimp"]["effects"]["member.created"] == 2
    no_duplicates(live)


def test_four_worker_processes_never_exceed_a_shared_limit_of_5_per_second(live: Stack) -> None:
    # Given three more worker processes on the enrollments lane (four in all)
    live.start_worker("enrollments", name="enrollments-extra", concurrency=3)
    live.wait_for_workers(("enrollments",))
    try:
        time.sleep(2)  # let the extra pool come up so the four really compete
        purchase(live, 20, source="stripe_engine")
        all_delivered(live, 20, timeout=120)
    finally:
        live.stop_worker("enrollments-extra")
    calls = sorted(c.at for c in live.sandbox_state.calls if c.provider == "thinkific")
    assert len(calls) >= 60  # find user, create user, find enrollment, enroll: ~4 per purchase
    busiest = max(sum(1 for t in calls if start <= t < start + 1.0) for start in calls)
    assert busiest <= 5 + 1, f"{busiest} requests in one second"  # the rate plus the burst of 1
    no_duplicates(live)


def test_the_sandbox_faults_endpoint_drives_the_same_faults(live: Stack) -> None:
    # the control API the chaos suite uses, rather than the in-process state
    url = f"{live.sandbox.url}/_sandbox/faults/mixpanel"
    assert requests.put(url, json={"status": 503, "duration": 2}, timeout=5).status_code == 200
    purchase(live, 3)
    all_delivered(live, 9)
    assert attempt_outcomes(live, "analytics.track")["retry:503"] >= 1
    assert effects(live)["mixpanel"]["effects"]["event.imported"] == 3
