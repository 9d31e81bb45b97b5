"""A worker killed mid-delivery: its message comes back and the action still happens once."""

from __future__ import annotations

import signal
import time

import psutil

from devtools import simulate
from devtools.sandbox.state import Fault
from tests.support.db import scalar
from tests.support.stack import Stack
from tests.support.stripe_events import SECRET
from tests.support.waiting import wait_until

PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"


def pool_children(stack: Stack, name: str) -> list[psutil.Process]:
    return psutil.Process(stack.workers[name].pid).children(recursive=True)


def test_a_pool_child_killed_mid_enrollment_is_replaced_and_enrolls_once(live: Stack) -> None:
    # Given Thinkific answering slowly, so an enrollment is in flight for a while
    live.sandbox_state.faults["thinkific"] = Fault(latency_ms=800)
    events = simulate.create_purchases(live.sandbox.url, 1, price=PRICE, amount=4900)
    simulate.send_all(
        f"{live.receiver.url}/webhooks/stripe",
        simulate.plan_deliveries(events, 0, seed=1),
        simulate.stripe_signer(SECRET),
        rate=0,
        concurrency=1,
    )
    in_flight = (
        "SELECT count(*) FROM deliveries WHERE action = 'courses.enroll' AND status = 'in_flight'"
    )
    wait_until(
        lambda: scalar(live.runtime.engine, in_flight), lambda n: n == 1, timeout=30, every=0.05
    )
    time.sleep(1.0)  # mid-call: the user may exist already, the enrollment not yet
    # When the process doing it is SIGKILLed
    children = pool_children(live, "enrollments")
    assert children, "the enrollments worker has no pool child"
    for child in children:
        child.send_signal(signal.SIGKILL)
    # Then the message is requeued (acks late, reject on worker lost), the new child takes back its
    # own lease at once, looks before creating, and the purchase ends with exactly one enrollment
    done = "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
    wait_until(lambda: scalar(live.runtime.engine, done), lambda n: n == 3, timeout=60)
    thinkific = live.sandbox_state.summary()["providers"]["thinkific"]
    assert thinkific["effects"]["enrollment.created"] == 1
    assert thinkific["duplicates"] == {}
    attempts = scalar(
        live.runtime.engine, "SELECT attempts FROM deliveries WHERE action = 'courses.enroll'"
    )
    assert attempts == 2  # the killed try and the one that finished
