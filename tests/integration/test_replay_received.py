"""What the receiver set aside, replayed through the running system: a body our provider module
could not identify runs once the module is fixed, and the second body of an id conflict (Teachable
without `hook_event_id` keys refunds by transaction, so two refunds of one collide) runs as a new
event. Real receiver, real workers; the replay is the operator's `stackwire dlq replay`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from pipeline.delivery.deadletter import replay
from pipeline.delivery.rereceive import derived_id
from pipeline.providers.stripe.source import StripeSource
from tests.support.db import counts, rows, scalar
from tests.support.stack import Stack
from tests.support.stripe_events import signed
from tests.support.waiting import wait_until

PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"
TEACHABLE_URL_SECRET = "teachable-url-secret-7f3a9c"


def control(stack: Stack, path: str, body: Any = None) -> Any:
    answer = requests.post(f"{stack.sandbox.url}/_sandbox/{path}", json=body or {}, timeout=10)
    answer.raise_for_status()
    return answer.json()


def deliveries(stack: Stack) -> dict[str, int]:
    return counts(
        stack.runtime.engine,
        "SELECT action || ':' || status, count(*) FROM deliveries GROUP BY 1",
    )


def events(stack: Stack) -> list[dict[str, Any]]:
    return rows(
        stack.runtime.engine,
        "SELECT id, external_id, provider_type, status, canonical_type FROM events ORDER BY id",
    )


def test_an_unidentified_stripe_checkout_runs_once_after_the_module_is_fixed(
    live: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Stripe checkout our module fails to identify (the receiver runs in this process)
    [bought] = control(live, "stripe/purchases", [{"email": "unread@example.com", "price": PRICE}])[
        "purchases"
    ]
    event = bought["event"]

    def broken(*_: object) -> None:
        raise KeyError("a bug in a provider module")

    with monkeypatch.context() as patched:
        patched.setattr(StripeSource, "identify", broken)
        answer = live.post_webhook("stripe", *signed(event))
    assert (answer.status_code, answer.json()["status"]) == (202, "quarantined")
    dead_letter = int(scalar(live.runtime.engine, "SELECT id FROM dead_letters"))

    # When the module is fixed and the operator replays the dead letter
    assert replay(live.runtime, dead_letter).outcome == "replayed"

    # Then the one row takes the event's id and type and its three actions land once
    [row] = wait_until(
        lambda: events(live), lambda seen: seen[0]["status"] == "processed", timeout=60
    )
    assert (row["external_id"], row["canonical_type"]) == (event["id"], "purchase.completed")
    wait_until(
        lambda: deliveries(live),
        lambda seen: (
            seen
            == {
                "courses.enroll:delivered": 1,
                "email.subscribe:delivered": 1,
                "analytics.track:delivered": 1,
            }
        ),
        timeout=90,
    )
    # and the same webhook sent again now is a duplicate of it
    again = live.post_webhook("stripe", *signed(event))
    assert again.json() == {"status": "duplicate", "event_id": row["id"]}


def teachable_refund(stack: Stack, transaction: dict[str, Any], refunded: int) -> bytes:
    """A Teachable refund hook as Teachable sends it without `hook_event_id`."""
    hook = control(stack, f"teachable/transactions/{transaction['id']}/refund")
    [envelope] = json.loads(hook["body"])
    del envelope["hook_event_id"]
    envelope["object"]["amount_refunded"] = refunded
    return json.dumps([envelope]).encode()


def post_teachable(stack: Stack, body: bytes) -> requests.Response:
    return requests.post(
        f"{stack.receiver.url}/webhooks/teachable?key={TEACHABLE_URL_SECRET}",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def test_a_second_teachable_refund_under_the_same_id_replays_as_a_new_event(live: Stack) -> None:
    # Given a Teachable sale, tracked in analytics
    sale = control(
        live,
        "teachable/sales",
        {"email": "two.refunds@example.com", "name": "Two Refunds", "course_id": 7001},
    )
    transaction = sale["event"]["object"]
    assert post_teachable(live, sale["body"].encode()).status_code == 202

    # When two partial refunds of that transaction arrive, both keyed Transaction.refunded:<id>
    first, second = (
        teachable_refund(live, transaction, 1000),
        teachable_refund(live, transaction, 2900),
    )
    assert post_teachable(live, first).status_code == 202
    conflict = post_teachable(live, second)

    # Then the second is a conflict, kept whole (body and headers) in its dead letter
    assert (conflict.status_code, conflict.json()["status"]) == (200, "conflict")
    [dead] = rows(
        live.runtime.engine,
        "SELECT id, reason, body, payload FROM dead_letters WHERE reason = 'id_conflict'",
    )
    assert bytes(dead["body"]) == second
    assert dead["payload"]["headers"]["Content-Type"] == "application/json"
    wait_until(
        lambda: deliveries(live),
        lambda seen: seen == {"analytics.track:delivered": 2},  # the sale and the first refund
        timeout=90,
    )

    # When the operator replays it, twice
    assert [replay(live.runtime, dead["id"]).outcome for _ in range(2)] == ["replayed", "duplicate"]

    # Then it runs once as a new event under a derived id, with the same flows and idempotency
    external_id = derived_id(f"Transaction.refunded:{transaction['id']}", second)
    found = wait_until(
        lambda: [e for e in events(live) if e["external_id"] == external_id],
        lambda seen: bool(seen) and seen[0]["status"] == "processed",
        timeout=60,
    )
    assert found[0]["canonical_type"] == "purchase.refunded"
    assert len(events(live)) == 3
    # the refund's analytics action is keyed by the transaction: already delivered, not doubled
    assert deliveries(live) == {"analytics.track:delivered": 2}
    assert live.sandbox_state.summary()["providers"]["mixpanel"]["duplicates"] == {}
