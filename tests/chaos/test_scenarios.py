"""Fault injection against the running system: each scenario drives >= 1,000 purchases through
real processes while something breaks, then checks that nothing was lost, doubled or stuck.

Run with `make chaos` (also in CI). Each scenario starts its own system (own PostgreSQL and
Redis, so restarting them disturbs nothing else) and is bounded in time and traffic.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from devtools.bench import traffic
from devtools.bench.invariants import Verdict, check
from devtools.bench.loadgen import Request, send_until_accepted
from devtools.bench.system import BENCH_CONFIG, SystemUnderTest
from pipeline.delivery.deadletter import replay
from pipeline.keys import LANES
from pipeline.runtime import Runtime
from tasks.celery_app import create_celery
from tests.chaos.conftest import PURCHASES, record

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1800)]


def drive(
    system: SystemUnderTest,
    events: list[dict[str, Any]],
    *,
    copies: int = 1,
    during: Callable[[], None] | None = None,
    rate: float = 150.0,
    concurrency: int = 8,
) -> set[str]:
    """Sends every event (`copies` times, shuffled) while `during` breaks something."""

    def build() -> list[Request]:
        requests = [traffic.signed_stripe(e) for e in events for _ in range(copies)]
        random.Random(7).shuffle(requests)
        return requests

    accepted: set[str] = set()

    def sender() -> None:
        _, ids = send_until_accepted(
            f"{system.receiver_url}", build, concurrency=concurrency, rate=rate
        )
        accepted.update(ids)

    thread = threading.Thread(target=sender)
    thread.start()
    if during is not None:
        during()
    thread.join()
    return accepted


def verdict(
    system: SystemUnderTest,
    scenario: str,
    accepted: set[str],
    notes: str = "",
    *,
    drain: float = 300,
) -> Verdict:
    engine = system.engine()
    try:
        found = check(engine, system.sandbox_url, accepted, timeout=drain)
    finally:
        engine.dispose()
    record(
        {
            "scenario": scenario,
            "events": found.events,
            "lost": found.lost,
            "duplicated": found.duplicated,
            "stuck": found.stuck,
            "drain": found.drain_seconds,
            "notes": notes,
        }
    )
    return found


def assert_clean(found: Verdict, expected: int) -> None:
    assert found.events == expected, found
    assert found.clean, found
    assert found.dead == 0, found


def purchases(system: SystemUnderTest, count: int = PURCHASES) -> list[dict[str, Any]]:
    return traffic.purchase_events(system.sandbox_url, count)


def test_1_workers_sigkilled_mid_flight_repeatedly(system_factory: Any) -> None:
    system = system_factory("kill")
    events = purchases(system)

    def kill_repeatedly() -> None:
        for round_number in range(8):
            time.sleep(1.5)
            for lane in LANES:
                system.kill_pool(lane)
            if round_number == 3:
                system.kill_worker("enrollments")  # the whole worker, parent and pool

    found = verdict(
        system,
        "1. SIGKILL workers of every lane, 8 times",
        drive(system, events, during=kill_repeatedly),
    )
    assert_clean(found, len(events))


def test_2_redis_restarted_while_events_flow(system_factory: Any) -> None:
    system = system_factory("redis")
    events = purchases(system)

    def restart() -> None:
        time.sleep(2)
        system.restart_redis(down_for=3)

    found = verdict(system, "2. Redis restarted (AOF on)", drive(system, events, during=restart))
    assert_clean(found, len(events))


def test_3_postgresql_restarted_while_events_flow(system_factory: Any) -> None:
    system = system_factory("postgres")
    events = purchases(system)

    def restart() -> None:
        time.sleep(2)
        system.restart_postgres(down_for=3)

    accepted = drive(system, events, during=restart)
    found = verdict(system, "3. PostgreSQL restarted (receiver 503s, sender retries)", accepted)
    assert_clean(found, len(events))


def test_4_a_destination_fails_for_a_minute_then_recovers(system_factory: Any) -> None:
    system = system_factory("destination")
    events = purchases(system)
    system.fault("thinkific", status=500, duration=30)
    system.fault("mailchimp", status=429, retry_after=2, duration=30)

    def wait_out_the_fault() -> None:
        time.sleep(30)

    found = verdict(
        system,
        "4. Thinkific 500s and Mailchimp 429s for 30 s",
        drive(system, events, during=wait_out_the_fault),
    )
    assert_clean(found, len(events))


def test_5_every_webhook_three_times_shuffled_from_concurrent_senders(system_factory: Any) -> None:
    system = system_factory("redelivery")
    events = purchases(system)
    found = verdict(
        system,
        "5. every webhook delivered 3x, shuffled",
        drive(system, events, copies=3, concurrency=16),
    )
    assert_clean(found, len(events))


def test_6_two_beat_processes_at_once(system_factory: Any) -> None:
    system = system_factory("beats", beats=2)
    events = purchases(system)
    found = verdict(system, "6. two Beat processes", drive(system, events))
    assert_clean(found, len(events))


def test_7_publish_after_commit_fails_for_a_tenth_of_requests(system_factory: Any) -> None:
    system = system_factory("publish", extra_env={"STACKWIRE_CHAOS_PUBLISH_FAILURE_RATE": "0.1"})
    events = purchases(system)
    accepted = drive(system, events)
    found = verdict(system, "7. 10 % of publishes after commit fail", accepted)
    assert_clean(found, len(events))
    engine = system.engine()
    with engine.connect() as connection:
        swept = connection.execute(
            text("SELECT count(*) FROM events WHERE dispatched_at IS NOT NULL")
        ).scalar()
    engine.dispose()
    assert swept and swept >= len(events) * 0.05  # the sweeper really did the publishing for those


def test_8_a_destination_hangs_on_every_call_for_a_while(system_factory: Any) -> None:
    system = system_factory("hang")
    events = purchases(system)
    system.fault("thinkific", hang_seconds=8, duration=25)  # longer than the 5 s client timeout

    def wait() -> None:
        time.sleep(25)

    found = verdict(
        system, "8. Thinkific hangs 8 s per call for 25 s", drive(system, events, during=wait)
    )
    assert_clean(found, len(events))


def test_9_an_analytics_flood_while_purchases_arrive(system_factory: Any) -> None:
    system = system_factory("flood", pool={"payments": 1, "enrollments": 2, "analytics": 1})
    events = purchases(system)
    flood = traffic.analytics_requests(int(100 * PURCHASES))
    flood_ids: set[str] = set()

    def flood_meanwhile() -> None:
        _, ids = send_until_accepted(system.receiver_url, lambda: flood, concurrency=16)
        flood_ids.update(ids)

    flooder = threading.Thread(target=flood_meanwhile)
    flooder.start()
    time.sleep(5)  # the analytics lane is backed up before the purchases start
    accepted = drive(system, events, rate=50)
    flooder.join()
    engine = system.engine()
    with engine.connect() as connection:
        p99 = connection.execute(
            text(
                "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - e.received_at)) "
                "FROM events e JOIN event_steps s ON s.event_id = e.id AND s.step = 'plan' "
                "WHERE e.source = 'stripe'"
            )
        ).scalar()
    engine.dispose()
    scenario = f"9. {len(flood_ids):,} analytics events flooding, purchases meanwhile"
    notes = f"payments lane p99 receipt->planned {float(p99 or 0) * 1000:.0f} ms"
    # the analytics lane works through the whole flood (a few hundred events a second here)
    found = verdict(system, scenario, accepted | flood_ids, notes=notes, drain=1500)
    assert_clean(found, len(events) + len(flood))
    assert found.details["analytics"]


def open_dead_letters(system: SystemUnderTest, reason: str | None = None) -> list[int]:
    engine = system.engine()
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id FROM dead_letters WHERE status = 'open' AND reason = coalesce(:r, reason)"
                ),
                {"r": reason},
            )
            return [row[0] for row in rows]
    finally:
        engine.dispose()


def test_10_schema_drift_mid_stream_quarantined_then_replayed(
    system_factory: Any, tmp_path: Path
) -> None:
    # Given a Stripe source pinned to contract version 1 (payment_status required in the webhook)
    config = tmp_path / "stackwire.toml"
    pinned = BENCH_CONFIG.read_text().replace(
        'api_key = "sk_test_bench"', 'api_key = "sk_test_bench"\ncontract_version = 1'
    )
    config.write_text(pinned)
    system = system_factory("drift", config=config)
    events = purchases(system)
    # When a tenth of the webhooks arrive without it
    drifted = {e["id"] for e in events[::10]}
    for event in events:
        if event["id"] in drifted:
            del event["data"]["object"]["payment_status"]
    accepted = drive(system, events)
    deadline = time.monotonic() + 120
    while (
        len(open_dead_letters(system, "schema_drift")) < len(drifted)
        and time.monotonic() < deadline
    ):
        time.sleep(1)
    quarantined = open_dead_letters(system, "schema_drift")
    assert len(quarantined) == len(drifted)
    # Then, once the contract is updated (pinned to version 2) and the workers restarted, a replay
    # of every quarantined event completes them, once
    config.write_text(pinned.replace("contract_version = 1", "contract_version = 2"))
    for lane in LANES:
        system.kill_worker(lane)
    system.wait_ready()
    runtime = Runtime.build(system.settings, create_celery(system.settings, task_events=False))
    try:
        outcomes = {replay(runtime, dead_letter_id).outcome for dead_letter_id in quarantined}
    finally:
        runtime.close()
    assert outcomes == {"replayed"}
    scenario = "10. schema drift: 10 % quarantined, replayed after the contract update"
    found = verdict(system, scenario, accepted, notes=f"{len(drifted)} quarantined and replayed")
    assert_clean(found, len(events))
    assert found.details["enrolled"] == len(events)
