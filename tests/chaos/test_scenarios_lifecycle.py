"""Fault injection past a plain purchase (scenarios 11-16): refunds racing retrying enrollments,
subscriptions in Stripe's default flow shuffled and doubled, PayPal's postback failing, a
destination down past the whole attempt window, slow creates with worker kills, and poison
requests mixed into normal traffic.

Each runs on the whole system as real processes (`devtools/bench/system.py`) with bench.toml plus
`devtools/bench/chaos.toml` (refund and subscription flows, PayPal), ends in the same lost /
doubled / stuck verdict as scenarios 1-10, then checks what the scenario is about.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text

from devtools.bench import lifecycle
from devtools.bench.lifecycle import Purchase
from devtools.bench.loadgen import LoadReport, Request, send_until_accepted
from devtools.bench.system import SystemUnderTest, chaos_config
from devtools.bench.traffic import signed_stripe
from pipeline.delivery.deadletter import replay
from pipeline.runtime import Runtime
from tasks.celery_app import create_celery
from tests.chaos.conftest import ROWS
from tests.chaos.test_scenarios import assert_clean, open_dead_letters, verdict

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]
# smaller than scenarios 1-10's 1,000: each of these makes several sandbox objects per event and
# waits out a fault; a few hundred still exercise every path (see docs/chaos.md)
COUNT = int(os.environ.get("CHAOS_LIFECYCLE_COUNT", "300"))


def send(
    system: SystemUnderTest,
    build: Callable[[], Sequence[Request]],
    *,
    during: Callable[[], None] | None = None,
    rate: float = 150.0,
    concurrency: int = 8,
) -> tuple[LoadReport, set[str]]:
    """Sends what `build` makes, like a provider (5xx and dropped connections again), while
    `during` breaks something."""
    result: list[tuple[LoadReport, set[str]]] = []

    def sender() -> None:
        result.append(
            send_until_accepted(system.receiver_url, build, concurrency=concurrency, rate=rate)
        )

    thread = threading.Thread(target=sender)
    thread.start()
    if during is not None:
        during()
    thread.join()
    return result[0]


def shuffled(requests_: list[Request], seed: int = 11) -> list[Request]:
    random.Random(seed).shuffle(requests_)
    return requests_


def scalar(system: SystemUnderTest, sql: str, **params: Any) -> Any:
    engine = system.engine()
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


def note(notes: str) -> None:
    """Notes for the scenario's row of the table, known only after its verdict."""
    ROWS[-1]["notes"] = notes


def wait_for(probe: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(1)


def replay_all(system: SystemUnderTest, dead_letter_ids: list[int]) -> list[str]:
    runtime = Runtime.build(system.settings, create_celery(system.settings, task_events=False))
    try:
        return [replay(runtime, entry).outcome for entry in dead_letter_ids]
    finally:
        runtime.close()


def assert_enrolled_once(sandbox_url: str, kept: list[Purchase], revoked: list[Purchase]) -> None:
    """Who holds the course at the sandbox's Thinkific: each kept buyer exactly one live
    enrollment; each refunded buyer none (revoked, or never granted)."""
    enrollments = lifecycle.thinkific_enrollments(sandbox_url)
    doubled = {p.email for p in kept if len(enrollments.get(p.email, [])) != 1}
    missing = {p.email for p in kept if not lifecycle.active(enrollments.get(p.email, []))}
    still_enrolled = {p.email for p in revoked if lifecycle.active(enrollments.get(p.email, []))}
    assert not doubled, f"{len(doubled)} kept buyers without exactly one enrollment"
    assert not missing, f"{len(missing)} kept buyers not enrolled"
    assert not still_enrolled, f"{len(still_enrolled)} refunded buyers still enrolled"


def test_11_refunds_race_enrollments_that_are_failing_and_retrying(
    system_factory: Any, tmp_path: Path
) -> None:
    system = system_factory("refund-race", config=chaos_config(tmp_path / "config"))
    bought = lifecycle.stripe_purchases(system.sandbox_url, COUNT)
    refunded, kept = bought[::2], bought[1::2]
    # Given the course platform failing most calls for 30 s while the purchases arrive
    system.fault("thinkific", status=503, rate=0.7, duration=30)
    _, accepted = send(system, lambda: [signed_stripe(p.event) for p in bought])
    # (enrollments failing: retrying, or held while the breaker is open, most not yet delivered)
    failing = """
        SELECT CASE WHEN EXISTS (SELECT 1 FROM attempts WHERE outcome = 'retry')
                    THEN count(*) ELSE 0 END
        FROM deliveries WHERE action = 'courses.enroll' AND status IN ('retrying', 'held')
    """
    wait_for(
        lambda: scalar(system, failing) >= len(refunded) // 2,
        60,
        "enrollments failing and retrying",
    )
    # When half of the buyers are refunded while their enrollments retry
    refunds = lifecycle.stripe_refunds(system.sandbox_url, refunded)
    _, more = send(system, lambda: shuffled([signed_stripe(e) for e in refunds]))
    # Then nothing is lost, doubled or stuck (a cancelled grant is finished) ...
    found = verdict(
        system,
        "11. refunds while enrollments fail and retry (Thinkific 70 % 503 for 30 s)",
        accepted | more,
    )
    cancelled = scalar(
        system,
        "SELECT count(*) FROM deliveries WHERE action = 'courses.enroll' AND status = 'cancelled'",
    )
    note(f"{len(refunded)} refunded: {cancelled} grants cancelled unsent, the rest revoked")
    assert_clean(found, len(bought) + len(refunds))
    # ... the race really happened: grants were cancelled by refunds planned while they retried
    assert cancelled > 0
    # and no refunded buyer holds the course, every other buyer holds it exactly once
    assert_enrolled_once(system.sandbox_url, kept, refunded)
    unfinished_revokes = scalar(
        system,
        "SELECT count(*) FROM deliveries WHERE action = 'courses.unenroll' AND status <> 'delivered'",
    )
    assert unfinished_revokes == 0


def test_12_subscriptions_in_the_default_incomplete_flow_shuffled_and_doubled(
    system_factory: Any, tmp_path: Path
) -> None:
    system = system_factory("subscriptions", config=chaos_config(tmp_path / "config"))
    count = COUNT // 2
    subscriptions = lifecycle.stripe_subscriptions(system.sandbox_url, count)
    # Given half of the `customer.subscription.created` webhooks delivered (twice) while the
    # subscriptions are still incomplete (they wait)
    early = [s.created for s in subscriptions[::2]]
    _, accepted = send(
        system,
        lambda: shuffled([signed_stripe(e) for e in early for _ in range(2)]),
        concurrency=16,
    )
    # When every first invoice is paid and all three webhooks of every subscription arrive twice,
    # shuffled, from 16 concurrent senders
    paid = lifecycle.pay_subscriptions(system.sandbox_url, subscriptions)
    rest = [s.created for s in subscriptions] + paid
    _, more = send(
        system, lambda: shuffled([signed_stripe(e) for e in rest for _ in range(2)]), concurrency=16
    )
    found = verdict(
        system, "12. subscriptions: created/updated/invoice.paid 2x, shuffled", accepted | more
    )
    assert_clean(found, 3 * count)
    # Then each subscription started exactly once: one enrollment at the sandbox per subscriber
    assert found.details["enrolled"] == count
    started = scalar(
        system,
        "SELECT count(DISTINCT subject) FROM deliveries WHERE action = 'courses.enroll' "
        "AND status = 'delivered'",
    )
    assert started == count
    enrollments = lifecycle.thinkific_enrollments(system.sandbox_url)
    assert sorted(len(enrollments.get(s.email, [])) for s in subscriptions) == [1] * count


def test_13_paypal_postback_failing_dead_letters_as_configuration_then_replays(
    system_factory: Any, tmp_path: Path
) -> None:
    system = system_factory("paypal", config=chaos_config(tmp_path / "config"))
    count = COUNT // 2
    bought = lifecycle.paypal_purchases(system.sandbox_url, count)
    # Given PayPal's verify-webhook-signature answering FAILURE to the next third of postbacks
    failing = count // 3
    lifecycle.fail_paypal_verification(system.sandbox_url, calls=failing)
    _, accepted = send(system, lambda: [lifecycle.signed_paypal(p.event) for p in bought], rate=50)
    # and a third of the captures refunded meanwhile (some of whose captures were dead-lettered)
    refunded, kept = bought[::3], [p for i, p in enumerate(bought) if i % 3]
    refunds = lifecycle.paypal_refunds(system.sandbox_url, refunded)
    _, more = send(system, lambda: [lifecycle.signed_paypal(w) for w in refunds], rate=50)
    # Then exactly those events are dead-lettered, as configuration (our webhook_id, or PayPal)
    wait_for(
        lambda: len(open_dead_letters(system, "postback_failed")) >= failing,
        120,
        "the failed postbacks to be dead-lettered",
    )
    dead = open_dead_letters(system, "postback_failed")
    assert len(dead) == failing
    classes = scalar(
        system,
        "SELECT string_agg(DISTINCT failure_class, ',') FROM dead_letters WHERE reason = 'postback_failed'",
    )
    assert classes == "configuration"
    # and once PayPal verifies again, a replay of each completes it, once
    assert set(replay_all(system, dead)) == {"replayed"}
    found = verdict(
        system,
        f"13. PayPal postback FAILURE for {failing} events, replayed",
        accepted | more,
        notes=f"{failing} dead-lettered as configuration, replayed",
    )
    assert_clean(found, len(bought) + len(refunds))
    assert_enrolled_once(system.sandbox_url, kept, refunded)


def test_14_a_destination_down_past_the_attempt_window_then_replayed_twice(
    system_factory: Any, tmp_path: Path
) -> None:
    # a short retry policy: the enrollments lane gives up after 20 s of retries or 30 s held;
    # the breaker tries again at least every 10 s (its default max_cooldown, 5 min, would keep a
    # replay held past a 30 s max_hold while the circuit waits out its cooldown)
    window = (
        '[lanes.enrollments]\nattempt_window = "20s"\nmax_hold = "30s"\n'
        '[destinations.courses.circuit]\nmax_cooldown = "10s"\n'
    )
    system = system_factory("window", config=chaos_config(tmp_path / "config", window))
    events = lifecycle.stripe_purchases(system.sandbox_url, COUNT)
    # Given Thinkific down for longer than the whole window
    system.fault("thinkific", status=503)
    _, accepted = send(system, lambda: [signed_stripe(p.event) for p in events])
    # Then every enrollment is dead-lettered
    enroll_dead = "SELECT count(*) FROM dead_letters WHERE step = 'deliver:courses.enroll' AND status = 'open'"
    wait_for(lambda: scalar(system, enroll_dead) == len(events), 240, "every enroll dead")
    dead = open_dead_letters(system)
    assert len(dead) == len(events)
    reasons = scalar(
        system, "SELECT string_agg(DISTINCT reason, ',' ORDER BY reason) FROM dead_letters"
    )
    # When the destination is back and the queue is replayed
    system.clear_fault("thinkific")
    assert set(replay_all(system, dead)) == {"replayed"}
    found = verdict(
        system,
        "14. Thinkific down past a 20 s window: all dead-lettered, replayed",
        accepted,
        notes=f"{len(dead)} dead-lettered ({reasons}), replayed once each",
    )
    # Then each enrollment lands exactly once
    assert_clean(found, len(events))
    assert found.details["enrolled"] == len(events)
    # and a second replay changes nothing: no call reaches the destination, nothing reopens
    calls_before = thinkific_calls(system)
    assert set(replay_all(system, dead)) == {"already_delivered"}
    time.sleep(5)
    assert thinkific_calls(system) == calls_before
    assert scalar(system, "SELECT count(*) FROM deliveries WHERE status <> 'delivered'") == 0


def thinkific_calls(system: SystemUnderTest) -> int:
    calls = requests.get(
        f"{system.sandbox_url}/_sandbox/calls", params={"provider": "thinkific"}, timeout=30
    ).json()["calls"]
    return len(calls)


def test_15_a_slow_create_and_worker_kills_never_double_an_enrollment(
    system_factory: Any, tmp_path: Path
) -> None:
    system = system_factory("slow-create", config=chaos_config(tmp_path / "config"))
    bought = lifecycle.stripe_purchases(system.sandbox_url, COUNT)
    # Given enrollment creates that hang 7 s at Thinkific (the client gives up after 5 s, but the
    # enrollment is made) for 40 s
    system.fault("thinkific", method="POST", path="/enrollments", hang_seconds=7, duration=40)

    def kill_enrollment_workers() -> None:
        # and the enrollments lane's pool SIGKILLed mid-call every few seconds, the whole
        # worker once
        for round_number in range(8):
            time.sleep(4)
            system.kill_pool("enrollments")
            if round_number == 4:
                system.kill_worker("enrollments")

    _, accepted = send(
        system, lambda: [signed_stripe(p.event) for p in bought], during=kill_enrollment_workers
    )
    found = verdict(
        system, "15. Thinkific creates hang 7 s (5 s timeout) + SIGKILLs of the lane", accepted
    )
    unknown = scalar(system, "SELECT count(*) FROM attempts WHERE outcome = 'unknown'")
    note(f"{unknown} attempts of unknown outcome, none doubled")
    # Then nothing was doubled: after a call of unknown outcome the next try looked first
    assert_clean(found, len(bought))
    assert unknown > 0  # the slow creates really timed out
    assert_enrolled_once(system.sandbox_url, bought, [])


def test_16_poison_requests_mixed_into_normal_traffic(system_factory: Any, tmp_path: Path) -> None:
    system = system_factory("poison", config=chaos_config(tmp_path / "config"))
    bought = lifecycle.stripe_purchases(system.sandbox_url, COUNT)
    # Given normal purchases (a tenth with U+0000 in the buyer's name) and, mixed in, poison:
    # raw NUL bytes, 3 kB ids, signed bodies without a type, each sent twice
    normal = [
        signed_stripe(lifecycle.with_nul_in_name(p.event) if i % 10 == 0 else p.event)
        for i, p in enumerate(bought)
    ]
    poison = lifecycle.poison_requests(COUNT // 10)
    expected = {p.request.event_id: p.status for p in poison}
    mixed = shuffled(normal + [p.request for p in poison for _ in range(2)])
    report, accepted = send(system, lambda: mixed, concurrency=16)
    # Then each poison request got its 4xx, every time it was sent
    answered: dict[str, set[int]] = {}
    for event_id, status in report.answers:
        if event_id in expected:
            answered.setdefault(event_id, set()).add(status)
    assert answered == {event_id: {status} for event_id, status in expected.items()}
    # and was kept once, quarantined, with a dead letter: none reached a lane
    quarantined = scalar(
        system,
        "SELECT count(*) FROM dead_letters WHERE step = 'receive' AND reason = 'unreadable'",
    )
    found = verdict(
        system,
        f"16. {len(poison)} poison requests (x2) mixed into {len(bought)} purchases",
        accepted,
        notes=f"{quarantined} quarantined once each, every one answered 400",
    )
    assert quarantined == len(poison)
    # and every normal purchase landed exactly once
    assert found.events == len(bought) and found.clean, found
    assert found.dead == len(poison), found
    assert found.details["enrolled"] == len(bought)
    assert_enrolled_once(system.sandbox_url, bought, [])
