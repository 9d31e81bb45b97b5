"""Generic senders through real workers: a Standard Webhooks purchase becomes one signed HTTP
delivery and one Slack message, however often it is redelivered; a generic HMAC page view lands
on the analytics lane; an envelope missing its part is quarantined."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks import Webhook

from tests.support.db import counts, rows
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT
from tests.support.stack import Stack
from tests.support.waiting import wait_until

FIXTURES = FIXTURE_ROOT / "generic"
# from tests/fixtures/config/60-generic.toml
INBOUND_SECRET = "whsec_c3RhY2t3aXJlLXN0YW5kYXJkLXdlYmhvb2tzLWN1cjE="
OUTBOUND_SECRET = "whsec_c3RhY2t3aXJlLW91dGJvdW5kLWh0dHAtc2lnbmluZzE="
GITHUB_SECRET = "generic-hmac-test-secret"
SLACK_TOKEN = "XsandboxSecret01"


def envelope(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def send_standard(stack: Stack, payload: dict[str, Any], msg_id: str) -> requests.Response:
    """Signed by the reference library, as any Standard Webhooks sender would (a fresh timestamp
    on every attempt, the same webhook-id)."""
    body = json.dumps(payload)
    now = datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(INBOUND_SECRET).sign(msg_id, now, body),
        "Content-Type": "application/json",
    }
    return stack.post_webhook("sw-orders", body.encode(), headers)


def send_github_style(stack: Stack, payload: dict[str, Any]) -> requests.Response:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return stack.post_webhook(
        "hmac-github", body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    )


def delivered(stack: Stack, *actions: str) -> dict[str, str]:
    found = rows(
        stack.runtime.engine,
        "SELECT action, status FROM deliveries WHERE action = ANY(:actions)",
        actions=list(actions),
    )
    return {row["action"]: row["status"] for row in found}


def sink(stack: Stack) -> list[dict[str, Any]]:
    answer = requests.get(f"{stack.sandbox.url}/_sandbox/webhook_sink/hooks/orders", timeout=5)
    deliveries: list[dict[str, Any]] = answer.json()["deliveries"]
    return deliveries


def test_a_purchase_is_sent_and_announced_exactly_once_however_often_it_arrives(
    live: Stack,
) -> None:
    # Given the creator's order endpoint, which checks our Standard Webhooks signature
    requests.put(
        f"{live.sandbox.url}/_sandbox/webhook_sink/hooks/orders",
        json={"secret": OUTBOUND_SECRET},
        timeout=5,
    ).raise_for_status()
    purchase = envelope("purchase.completed")

    # When the shop sends the purchase, redelivers it, and later resends it under a new id
    assert send_standard(live, purchase, "msg_order_1001").status_code == 202
    assert send_standard(live, purchase, "msg_order_1001").json()["status"] == "duplicate"
    wait_until(
        lambda: delivered(live, "orders-hook.send", "team-slack.notify"),
        lambda seen: seen == {"orders-hook.send": "delivered", "team-slack.notify": "delivered"},
    )
    assert send_standard(live, purchase, "msg_order_1001_manual_resend").status_code == 202
    wait_until(
        lambda: counts(live.runtime.engine, "SELECT status, count(*) FROM events GROUP BY status"),
        lambda seen: seen == {"processed": 2},
    )

    # Then the endpoint got one delivery, signed, its webhook-id our idempotency key
    [delivery] = sink(live)
    assert (
        Webhook(OUTBOUND_SECRET).verify(delivery["body"], delivery["headers"]) == delivery["json"]
    )
    assert delivery["json"]["type"] == "purchase.completed"
    assert delivery["json"]["key"] == "sw-orders:ord_20260301_1001"
    keys = rows(
        live.runtime.engine,
        "SELECT idempotency_key FROM deliveries WHERE action = 'orders-hook.send'",
    )
    assert [row["idempotency_key"] for row in keys] == [delivery["webhook_id"]]
    # and Slack got one message naming the buyer, never the raw address
    summary = live.sandbox_state.summary()["providers"]
    assert summary["webhook_sink"] == {"effects": {"delivery.received": 1}, "duplicates": {}}
    assert summary["slack"] == {"effects": {"message.posted": 1}, "duplicates": {}}
    messages = requests.get(f"{live.sandbox.url}/_sandbox/slack/messages", timeout=5).json()
    assert messages["messages"] == {
        SLACK_TOKEN: ["New purchase: Ada Lovelace bought Pro Course for 49.00 EUR."]
    }
    # and no attempt row shows either hook's path: a webhook URL is its own secret
    tries = rows(
        live.runtime.engine,
        "SELECT d.action, a.request FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
        "WHERE d.action IN ('orders-hook.send', 'team-slack.notify') ORDER BY d.action",
    )
    assert [(t["action"], t["request"]) for t in tries] == [
        ("orders-hook.send", "POST /[redacted]"),
        ("team-slack.notify", "POST /services/[redacted]"),
    ]
    # and the second event about the same order found everything already planned
    plans = rows(
        live.runtime.engine,
        "SELECT s.detail FROM event_steps s JOIN events e ON e.id = s.event_id "
        "WHERE s.step = 'plan' AND e.external_id = 'msg_order_1001_manual_resend'",
    )
    assert "orders-hook.send" in json.dumps(plans[0]["detail"]["already_planned"])


def test_a_page_view_from_a_generic_hmac_sender_lands_on_the_analytics_lane(live: Stack) -> None:
    assert send_github_style(live, envelope("analytics.page_view")).status_code == 202
    wait_until(
        lambda: delivered(live, "analytics.track"),
        lambda seen: seen == {"analytics.track": "delivered"},
    )
    [event] = rows(
        live.runtime.engine,
        "SELECT lane, status, canonical_type FROM events WHERE source = 'hmac-github'",
    )
    assert event == {
        "lane": "analytics",
        "status": "processed",
        "canonical_type": "analytics.page_view",
    }
    [delivery] = rows(live.runtime.engine, "SELECT lane FROM deliveries")
    assert delivery == {"lane": "analytics"}
    assert live.sandbox_state.summary()["providers"]["mixpanel"] == {
        "effects": {"event.imported": 1},
        "duplicates": {},
    }


def test_an_envelope_without_its_purchase_is_quarantined_and_nothing_is_sent(live: Stack) -> None:
    broken = copy.deepcopy(envelope("purchase.completed"))
    del broken["data"]["purchase"]
    assert send_standard(live, broken, "msg_broken").status_code == 202
    [event] = wait_until(
        lambda: rows(live.runtime.engine, "SELECT status FROM events"),
        lambda seen: bool(seen) and seen[0]["status"] not in ("received", "verified"),
    )
    assert event == {"status": "quarantined"}
    time.sleep(0.5)
    assert counts(live.runtime.engine, "SELECT 'all', count(*) FROM deliveries") == {"all": 0}
    assert "slack" not in live.sandbox_state.summary()["providers"]
