"""Stripe purchases into HubSpot (one contact upsert per person) and GA4 (one purchase event per
purchase) through real workers, with redeliveries, refunds and several purchases per person."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import requests

from devtools import simulate
from pipeline.delivery.gates import holds
from tests.support.db import counts, rows
from tests.support.stack import Stack
from tests.support.waiting import wait_until

SOURCE, SECRET = "stripe_crm", "whsec_test_current"  # 70-crm-analytics.toml
PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"
UPSERT_PATH = "/hubspot/crm/v3/objects/contacts/batch/upsert"


def stripe(stack: Stack, path: str, body: Any = None) -> dict[str, Any]:
    answer = requests.post(f"{stack.sandbox.url}/_sandbox/stripe/{path}", json=body, timeout=30)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def buy(stack: Stack, emails: list[str]) -> list[dict[str, Any]]:
    specs = [
        {"email": e, "name": f"Buyer {n}", "price": PRICE, "amount": 4900}
        for n, e in enumerate(emails)
    ]
    purchases: list[dict[str, Any]] = stripe(stack, "purchases", specs)["purchases"]
    return purchases


def send(stack: Stack, events: list[dict[str, Any]], redeliver: float = 0.0) -> simulate.Report:
    deliveries = simulate.plan_deliveries(events, redeliver=redeliver, seed=5)
    return simulate.send_all(
        f"{stack.receiver.url}/webhooks/{SOURCE}",
        deliveries,
        simulate.stripe_signer(SECRET),
        rate=0,
        concurrency=6,
    )


def statuses(stack: Stack, destination: str) -> dict[str, int]:
    return counts(
        stack.runtime.engine,
        "SELECT status, count(*) FROM deliveries WHERE destination = :d GROUP BY status",
        d=destination,
    )


def settle(stack: Stack, expected: dict[str, int]) -> None:
    wait_until(
        lambda: {d: statuses(stack, d) for d in expected},
        lambda seen: all(seen[d] == {"delivered": n} for d, n in expected.items()),
        timeout=120,
    )


def effects(stack: Stack, provider: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.sandbox_state.summary()["providers"].get(provider, {})
    return found


def ga4_events(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.sandbox_state.store("ga4", "events").values())


def upserts(stack: Stack) -> list[int]:
    return [c.status for c in stack.sandbox_state.calls if c.path == UPSERT_PATH]


def test_purchases_redelivered_upsert_each_person_once_and_track_each_purchase_once(
    live: Stack,
) -> None:
    # Given 40 checkouts by 40 people, sent to the CRM source, 12 of them delivered twice
    purchases = buy(live, [f"crm.buyer{n}@example.com" for n in range(40)])
    report = send(live, [p["event"] for p in purchases], redeliver=0.3)
    assert report.statuses == {202: 40, 200: 12} and not report.errors

    # Then every upsert and every track is delivered
    settle(live, {"crm": 40, "ga4": 40})
    # HubSpot holds one contact per person, created once, never touched again
    assert effects(live, "hubspot") == {"effects": {"contact.created": 40}, "duplicates": {}}
    assert set(upserts(live)) == {200}
    contacts = live.sandbox_state.store("hubspot", "contacts")
    assert sorted(contacts) == sorted(f"crm.buyer{n}@example.com" for n in range(40))
    assert {c["properties"]["lifecyclestage"] for c in contacts.values()} == {"customer"}
    assert {c["properties"]["firstname"] for c in contacts.values()} == {"Buyer"}
    # GA4 recorded one purchase per checkout, with its Stripe session as transaction id
    assert effects(live, "ga4") == {"effects": {"event.recorded": 40}, "duplicates": {}}
    recorded = {e["params"]["transaction_id"]: e for e in ga4_events(live)}
    assert set(recorded) == {f"stripe:{p['session']}" for p in purchases}
    assert {
        (e["name"], e["params"]["value"], e["params"]["currency"]) for e in recorded.values()
    } == {("purchase", 49.0, "USD")}
    assert len({e["client_id"] for e in recorded.values()}) == 40
    assert not any("@" in e["client_id"] for e in recorded.values())

    # When three of them are refunded
    for purchase in purchases[:3]:
        refund = stripe(live, f"charges/{purchase['charge']}/refund")["event"]
        body = json.dumps(refund).encode()
        assert (
            live.post_webhook(SOURCE, body, simulate.stripe_signer(SECRET)(body)).status_code == 202
        )

    # Then GA4 gets a refund naming each purchase, for the same client, and HubSpot nothing more
    settle(live, {"crm": 40, "ga4": 43})
    refunds = [e for e in ga4_events(live) if e["name"] == "refund"]
    assert sorted(e["params"]["transaction_id"] for e in refunds) == sorted(
        f"stripe:{p['session']}" for p in purchases[:3]
    )
    for refund in refunds:
        assert refund["client_id"] == recorded[refund["params"]["transaction_id"]]["client_id"]
    assert effects(live, "hubspot")["effects"] == {"contact.created": 40}


def test_a_person_s_purchases_in_one_batch_become_one_input(live: Stack) -> None:
    # Given HubSpot paused, so every upsert waits for the same batch
    holds.pause(live.runtime, "crm")
    try:
        # and 5 people buying twice each
        emails = [f"crm.twice{n}@example.com" for n in range(5) for _ in range(2)]
        purchases = buy(live, emails)
        assert send(live, [p["event"] for p in purchases]).statuses == {202: 10}
        wait_until(lambda: statuses(live, "crm"), lambda seen: seen == {"held": 10}, timeout=60)
        assert upserts(live) == []
    finally:
        # When HubSpot is resumed
        holds.resume(live.runtime, "crm")

    # Then one request carried one input per person, and all ten deliveries got its answer
    settle(live, {"crm": 10, "ga4": 10})
    assert upserts(live) == [200]
    assert effects(live, "hubspot") == {"effects": {"contact.created": 5}, "duplicates": {}}
    results = [
        r["result"]
        for r in rows(
            live.runtime.engine, "SELECT result FROM deliveries WHERE destination = 'crm'"
        )
    ]
    assert {r["deliveries_collapsed"] for r in results} == {2}
    assert sorted(Counter(r["contact_id"] for r in results).values()) == [2] * 5
    # while GA4 still counts ten purchases
    assert effects(live, "ga4") == {"effects": {"event.recorded": 10}, "duplicates": {}}
