"""A purchase's whole life through real workers: async payment, refund, dispute, out-of-order,
carts longer than a page, and subscriptions started in Stripe's default flow in any order."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
import requests

from devtools import simulate
from devtools.sandbox.state import Fault
from tests.support.db import counts, rows, scalar
from tests.support.stack import Stack
from tests.support.stripe_events import SECRET
from tests.support.waiting import wait_until

PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"


def control(stack: Stack, path: str, body: Any = None) -> dict[str, Any]:
    answer = requests.post(f"{stack.sandbox.url}/_sandbox/stripe/{path}", json=body, timeout=10)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def send(stack: Stack, event: dict[str, Any]) -> int:
    body = json.dumps(event).encode()
    return stack.post_webhook("stripe", body, simulate.stripe_signer(SECRET)(body)).status_code


def statuses(stack: Stack) -> dict[str, str]:
    found = rows(
        stack.runtime.engine, "SELECT provider_type, status, reason FROM events ORDER BY id"
    )
    return {
        r["provider_type"]: f"{r['status']}{':' + r['reason'] if r['reason'] else ''}"
        for r in found
    }


def settled(stack: Stack, expected_events: int) -> dict[str, int]:
    def probe() -> dict[str, int]:
        open_events = counts(
            stack.runtime.engine,
            "SELECT status, count(*) FROM events WHERE status IN ('received', 'verified') "
            "GROUP BY status",
        )
        total = counts(stack.runtime.engine, "SELECT 'all', count(*) FROM events").get("all", 0)
        unfinished = (
            "SELECT 'open', count(*) FROM deliveries"
            " WHERE status NOT IN ('delivered', 'dead', 'cancelled')"
        )
        pending = counts(stack.runtime.engine, unfinished)
        return {"open_events": sum(open_events.values()), "events": total, **pending}

    return wait_until(
        probe,
        lambda s: s["events"] == expected_events and s["open_events"] == 0 and not s.get("open"),
        timeout=60,
    )


def effects(stack: Stack, provider: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.sandbox_state.summary()["providers"].get(provider, {})
    return found


def test_a_delayed_payment_waits_then_enrolls_once_when_it_succeeds(live: Stack) -> None:
    # Given a checkout paid by bank debit: completed, but unpaid
    purchase = control(
        live, "purchases", {"email": "dora@example.com", "price": PRICE, "payment_status": "unpaid"}
    )
    assert send(live, purchase["event"]) == 202
    settled(live, 1)
    assert statuses(live) == {"checkout.session.completed": "waiting:payment_not_final"}
    assert not effects(live, "thinkific")
    # When the payment succeeds later
    succeeded = control(live, f"sessions/{purchase['session']}/succeed")["event"]
    assert send(live, succeeded) == 202
    settled(live, 2)
    # Then access is granted exactly once
    assert statuses(live)["checkout.session.async_payment_succeeded"] == "processed"
    assert effects(live, "thinkific")["effects"] == {"user.created": 1, "enrollment.created": 1}


def test_a_failed_delayed_payment_grants_nothing(live: Stack) -> None:
    purchase = control(
        live, "purchases", {"email": "eve@example.com", "price": PRICE, "payment_status": "unpaid"}
    )
    send(live, purchase["event"])
    send(live, control(live, f"sessions/{purchase['session']}/fail")["event"])
    settled(live, 2)
    assert statuses(live)["checkout.session.async_payment_failed"] == "processed"
    assert not effects(live, "thinkific")  # purchase.failed has no flow that grants anything


def test_a_refund_revokes_the_access_the_purchase_granted(live: Stack) -> None:
    purchase = control(live, "purchases", {"email": "fay@example.com", "price": PRICE})
    send(live, purchase["event"])
    settled(live, 1)
    send(live, control(live, f"charges/{purchase['charge']}/refund")["event"])
    settled(live, 2)
    assert statuses(live)["charge.refunded"] == "processed"
    thinkific = effects(live, "thinkific")["effects"]
    assert thinkific["enrollment.created"] == 1 and thinkific["enrollment.expired"] == 1
    enrollments = live.sandbox_state.store("thinkific", "enrollments")
    assert [e["expiry_date"] is not None for e in enrollments.values()] == [True]


def test_a_refund_while_the_enroll_is_still_retrying_cancels_it_and_grants_nothing(
    live: Stack,
) -> None:
    # Given a purchase whose enrollment keeps failing (the course platform is down)
    live.sandbox_state.faults["thinkific"] = Fault(status=503)
    purchase = control(live, "purchases", {"email": "gus@example.com", "price": PRICE})
    send(live, purchase["event"])
    enroll = "SELECT status, attempts FROM deliveries WHERE action = 'courses.enroll'"
    wait_until(
        lambda: rows(live.runtime.engine, enroll),
        lambda found: (
            bool(found) and found[0]["attempts"] >= 1 and found[0]["status"] != "in_flight"
        ),
        timeout=30,
    )
    # When the buyer is refunded meanwhile, and the platform comes back
    send(live, control(live, f"charges/{purchase['charge']}/refund")["event"])
    wait_until(lambda: rows(live.runtime.engine, enroll), lambda f: f[0]["status"] == "cancelled")
    del live.sandbox_state.faults["thinkific"]
    settled(live, 2)
    # Then the enroll never landed after the refund: no access, the unenroll done, a step says why
    by_action = counts(live.runtime.engine, "SELECT action, status FROM deliveries")
    assert by_action["courses.enroll"] == "cancelled"
    assert by_action["courses.unenroll"] == "delivered"
    enrollments = live.sandbox_state.store("thinkific", "enrollments").values()
    assert all(e["expiry_date"] is not None for e in enrollments)
    steps = rows(live.runtime.engine, "SELECT step, outcome FROM event_steps WHERE step = 'cancel'")
    assert steps == [{"step": "cancel", "outcome": "cancelled"}]


def test_a_refund_that_arrives_before_the_purchase_means_nothing_is_granted(live: Stack) -> None:
    # Given a purchase already refunded at Stripe, whose webhooks arrive refund first
    purchase = control(live, "purchases", {"email": "gus@example.com", "price": PRICE})
    refund = control(live, f"charges/{purchase['charge']}/refund")["event"]
    send(live, refund)
    settled(live, 1)
    send(live, purchase["event"])
    settled(live, 2)
    # Then the completion, fetched fresh, shows the refund: no access is granted
    assert statuses(live)["checkout.session.completed"] == "ignored:refunded_before_processing"
    assert "enrollment.created" not in effects(live, "thinkific").get("effects", {})


def test_a_dispute_revokes_access(live: Stack) -> None:
    purchase = control(live, "purchases", {"email": "hal@example.com", "price": PRICE})
    send(live, purchase["event"])
    settled(live, 1)
    send(live, control(live, f"charges/{purchase['charge']}/dispute")["event"])
    settled(live, 2)
    assert statuses(live)["charge.dispute.created"] == "processed"
    assert effects(live, "thinkific")["effects"]["enrollment.expired"] == 1


def test_a_product_missing_from_the_config_is_a_configuration_dead_letter(live: Stack) -> None:
    purchase = control(live, "purchases", {"email": "ian@example.com", "price": "price_unmapped"})
    send(live, purchase["event"])
    settled(live, 1)
    dead = rows(live.runtime.engine, "SELECT step, failure_class, reason FROM dead_letters")
    assert dead == [
        {
            "step": "deliver:courses.enroll",
            "failure_class": "configuration",
            "reason": "unmapped_product",
        }
    ]
    # the other actions of the same event were not blocked by it
    delivered = counts(
        live.runtime.engine,
        "SELECT action, count(*) FROM deliveries WHERE status = 'delivered' GROUP BY 1",
    )
    assert delivered == {"email.subscribe": 1, "analytics.track": 1}


def test_a_cart_longer_than_the_expanded_page_grants_every_course(live: Stack) -> None:
    # Given a checkout of twelve courses: Stripe expands only the first ten line items
    cart = [{"price": f"price_cart_course_{n:02d}", "amount": 1000} for n in range(1, 13)]
    purchase = control(live, "purchases", {"email": "jo@example.com", "items": cart})
    # When its webhook is processed
    send(live, purchase["event"])
    settled(live, 1)
    # Then all twelve are granted, the last two read from the line items' second page
    enrolled = live.sandbox_state.store("thinkific", "enrollments").values()
    assert sorted(e["course_id"] for e in enrolled) == list(range(301, 313))
    pages = [c for c in live.sandbox_state.calls_as_dicts("stripe") if "line_items" in c["path"]]
    assert [c["status"] for c in pages] == [200]


def test_two_products_of_one_course_enroll_once(live: Stack) -> None:
    # Given a new student buying the monthly and the annual plan of the same course (101)
    cart = [{"price": PRICE}, {"price": "price_course_annual"}]
    purchase = control(live, "purchases", {"email": "kim@example.com", "items": cart})
    send(live, purchase["event"])
    settled(live, 1)
    # Then they are enrolled in it once
    assert effects(live, "thinkific") == {
        "effects": {"user.created": 1, "enrollment.created": 1},
        "duplicates": {},
    }


def test_a_refund_whose_session_comes_back_without_line_items_is_a_contract_dead_letter(
    live: Stack,
) -> None:
    # Given a purchase granted, and a Stripe that stops honouring the line items' expansion
    purchase = control(live, "purchases", {"email": "lou@example.com", "price": PRICE})
    send(live, purchase["event"])
    settled(live, 1)
    control(live, "expansions/ignore", {"paths": ["data.line_items"]})
    # When the refund arrives
    send(live, control(live, f"charges/{purchase['charge']}/refund")["event"])
    settled(live, 2)
    # Then it is dead-lettered as a contract failure and alerted, never "nothing to revoke"
    assert statuses(live)["charge.refunded"] == "failed:missing_expansion"
    dead = rows(live.runtime.engine, "SELECT step, failure_class, reason FROM dead_letters")
    assert dead == [{"step": "fetch", "failure_class": "contract", "reason": "missing_expansion"}]
    assert counts(live.runtime.engine, "SELECT kind, count(*) FROM alerts GROUP BY 1") == {
        "dead_letter": 1
    }
    unenrolls = "SELECT count(*) FROM deliveries WHERE action = 'courses.unenroll'"
    assert scalar(live.runtime.engine, unenrolls) == 0


SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "invoice.paid",
    "customer.subscription.updated",
)


ORDERS = list(itertools.permutations(SUBSCRIPTION_EVENTS))


@pytest.mark.parametrize(
    "order", ORDERS, ids=[",".join(k.split(".")[-1] for k in o) for o in ORDERS]
)
def test_a_subscription_in_stripes_default_flow_starts_once_in_any_order(
    live: Stack, order: tuple[str, ...]
) -> None:
    # Given a subscription created incomplete a minute before its first invoice is paid
    now = int(time.time())
    created = control(
        live, "subscriptions", {"email": "mo@example.com", "price": PRICE, "at": now - 120}
    )
    events = {"customer.subscription.created": created["event"]}
    # When Stripe delivers its three events in this order, each one processed before the next;
    # the payment happens just before the first event it causes is delivered
    for number, kind in enumerate(order, start=1):
        if kind not in events:
            paid = control(live, f"subscriptions/{created['subscription']}/pay", {"at": now - 60})
            events.update(paid["events"])
        assert send(live, events[kind]) == 202
        settled(live, number)
    # Then it started exactly once, from whichever event first saw it active
    started = counts(
        live.runtime.engine,
        "SELECT d.action, count(*) FROM deliveries d JOIN events e ON e.id = d.event_id "
        "WHERE e.canonical_type = 'subscription.started' AND d.status = 'delivered' GROUP BY 1",
    )
    assert started == {"courses.enroll": 1, "analytics.track": 1}
    assert effects(live, "thinkific") == {
        "effects": {"user.created": 1, "enrollment.created": 1},
        "duplicates": {},
    }
    # and no event was dropped as superseded by one of another type
    reasons = rows(live.runtime.engine, "SELECT provider_type, status, reason FROM events")
    assert not [r for r in reasons if r["reason"] == "superseded_by_newer_state"], reasons
