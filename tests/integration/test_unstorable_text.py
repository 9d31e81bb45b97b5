"""U+0000 in what a provider sends, through the running system: PostgreSQL stores no NUL in text
and refuses `\\u0000` in jsonb, so every write of such a value used to fail, the dead letter's
too, and the sweeper republished the event forever. Now it settles, once, and the raw body stays
byte-exact.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.support.db import counts, rows
from tests.support.stack import Stack
from tests.support.stripe_events import checkout_completed, signed
from tests.support.waiting import wait_until

PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"


def stripe_purchase(stack: Stack, **spec: Any) -> dict[str, Any]:
    answer = requests.post(
        f"{stack.sandbox.url}/_sandbox/stripe/purchases",
        json=[{"price": PRICE, "amount": 4900, **spec}],
        timeout=30,
    )
    answer.raise_for_status()
    event: dict[str, Any] = answer.json()["purchases"][0]["event"]
    return event


def event_row(stack: Stack, external_id: str) -> dict[str, Any]:
    [found] = rows(
        stack.runtime.engine,
        "SELECT id, status, reason, body, canonical FROM events WHERE external_id = :e",
        e=external_id,
    )
    return found


def test_a_buyer_name_with_a_nul_is_processed_and_delivered_once(live: Stack) -> None:
    # Given a Stripe checkout whose buyer's name holds U+0000 (in the webhook and the session)
    event = stripe_purchase(live, email="nul.buyer@example.com", name="Ada\x00 Lovelace")
    body, headers = signed(event)
    assert b"\\u0000" in body

    # When its webhook arrives
    assert live.post_webhook("stripe", body, headers).status_code == 202

    # Then it is processed, the name without the NUL, and each action delivered once
    row = wait_until(
        lambda: event_row(live, event["id"]), lambda e: e["status"] == "processed", timeout=60
    )
    assert bytes(row["body"]) == body
    assert "\x00" not in json.dumps(row["canonical"])
    wait_until(
        lambda: counts(
            live.runtime.engine, "SELECT status, count(*) FROM deliveries GROUP BY status"
        ),
        lambda seen: seen == {"delivered": 3},
        timeout=90,
    )
    [contact] = rows(live.runtime.engine, "SELECT first_name, last_name FROM contacts")
    assert "\x00" not in f"{contact['first_name']}{contact['last_name']}"


def test_an_event_that_fails_with_a_nul_in_its_payload_is_dead_lettered_not_looped(
    live: Stack,
) -> None:
    # Given a signed checkout for a session Stripe does not have, its name holding U+0000
    event = checkout_completed(id="cs_test_a1unknown", customer_details={"name": "Bob\x00"})
    event["id"] = "evt_nul_unknown_session"
    body, headers = signed(event)

    # When it arrives and its fetch fails for good (404)
    assert live.post_webhook("stripe", body, headers).status_code == 202

    # Then the event fails with its dead letter written (the payload without the NUL)
    row = wait_until(
        lambda: event_row(live, event["id"]), lambda e: e["status"] == "failed", timeout=60
    )
    assert row["reason"] == "http_404"
    [dead] = rows(
        live.runtime.engine,
        "SELECT step, reason, payload FROM dead_letters WHERE event_id = :e",
        e=row["id"],
    )
    assert (dead["step"], dead["reason"]) == ("fetch", "http_404")
    assert dead["payload"]["data"]["object"]["customer_details"]["name"] == "Bob"
    assert bytes(row["body"]) == body
