"""PayPal through the running system: real receiver, real workers, the sandbox's PayPal signing for real.

A capture's webhook becomes one purchase.completed and its three deliveries (20-paypal.toml's
flows: courses.enroll, email.subscribe, analytics.track; its sku maps to course 201), a
resent transmission is a duplicate, a tampered body under genuine headers fails PayPal's postback
and delivers nothing, a wrong webhook_id dead-letters genuine payments until it is fixed and they
are replayed, a pending capture waits, and a refund takes the course back.
"""

from __future__ import annotations

from typing import Any

import requests

from pipeline.delivery.deadletter import replay
from tests.support.db import counts, rows, scalar
from tests.support.stack import Stack
from tests.support.waiting import wait_until

WEBHOOK_ID = "8PT597110X687430LKGECATA"  # 20-paypal.toml
URL_SECRET = "paypal-url-secret-3c9d1e"  # its signing_secrets: the webhook URL's ?key=
VERIFY_PATH = "/paypal/v1/notifications/verify-webhook-signature"
PURCHASE_ACTIONS = {"courses.enroll", "email.subscribe", "analytics.track"}


def paypal(stack: Stack, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = requests.post(
        f"{stack.sandbox.url}/_sandbox/paypal/{path}",
        json={"webhook_id": WEBHOOK_ID, **(body or {})},
        timeout=30,
    )
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def buy(stack: Stack, email: str, **spec: Any) -> dict[str, Any]:
    return paypal(
        stack,
        "purchases",
        {"email": email, "name": "Ada Lovelace", "sku": "paypal-course", "amount": "21.12", **spec},
    )


def deliver(stack: Stack, webhook: dict[str, Any], body: str | None = None) -> requests.Response:
    data = (body if body is not None else webhook["body"]).encode()
    return stack.post_webhook("paypal", data, webhook["headers"], key=URL_SECRET)


def event_of(stack: Stack, event_id: str) -> dict[str, Any]:
    [found] = rows(
        stack.runtime.engine,
        "SELECT id, status, reason, canonical_type, canonical "
        "FROM events WHERE source = 'paypal' AND external_id = :e",
        e=event_id,
    )
    return found


def deliveries(stack: Stack, row_id: int) -> dict[str, str]:
    found = rows(
        stack.runtime.engine, "SELECT action, status FROM deliveries WHERE event_id = :e", e=row_id
    )
    return {r["action"]: r["status"] for r in found}


def effects(stack: Stack, provider: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.sandbox_state.summary()["providers"].get(provider, {})
    return found


def calls(stack: Stack, path: str) -> list[int]:
    return [c.status for c in stack.sandbox_state.calls if c.path == path]


def settled(stack: Stack, event_id: str, actions: set[str]) -> dict[str, Any]:
    row = wait_until(
        lambda: event_of(stack, event_id),
        lambda e: e["status"] != "received" and e["status"] != "verified",
        timeout=60,
    )
    wait_until(
        lambda: deliveries(stack, row["id"]),
        lambda seen: seen == dict.fromkeys(actions, "delivered"),
        timeout=120,
    )
    return row


def test_a_capture_is_one_purchase_delivered_once_and_a_resend_is_a_duplicate(live: Stack) -> None:
    # Given a buyer pays the creator with PayPal
    bought = buy(live, "ada.paypal@example.com")

    # When PayPal delivers the capture's webhook
    first = deliver(live, bought)
    assert first.status_code == 202, first.text

    # Then it is verified by postback and becomes one purchase.completed, delivered three times
    row = settled(live, bought["event_id"], PURCHASE_ACTIONS)
    assert row["status"] == "processed"
    assert row["canonical_type"] == "purchase.completed"
    assert row["canonical"]["key"] == f"paypal:{bought['order']}"
    assert row["canonical"]["purchase"]["amount"] == 2112
    assert calls(live, VERIFY_PATH) == [200]
    assert effects(live, "thinkific") == {
        "effects": {"user.created": 1, "enrollment.created": 1},
        "duplicates": {},
    }
    [enrollment] = live.sandbox_state.store("thinkific", "enrollments").values()
    assert enrollment["course_id"] == 201
    assert effects(live, "mailchimp") == {"effects": {"member.created": 1}, "duplicates": {}}
    assert effects(live, "mixpanel") == {"effects": {"event.imported": 1}, "duplicates": {}}

    # When PayPal resends the same event in a new, newly signed transmission
    again = paypal(live, f"events/{bought['event_id']}/resend")
    assert again["headers"]["PAYPAL-TRANSMISSION-ID"] != bought["headers"]["PAYPAL-TRANSMISSION-ID"]
    second = deliver(live, again)

    # Then it is acknowledged as a duplicate and nothing is done twice
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}
    engine = live.runtime.engine
    assert scalar(engine, "SELECT count(*) FROM events WHERE source = 'paypal'") == 1
    assert scalar(engine, "SELECT redeliveries FROM events WHERE id = :i", i=row["id"]) == 1
    assert counts(engine, "SELECT status, count(*) FROM deliveries GROUP BY status") == {
        "delivered": 3
    }
    assert calls(live, VERIFY_PATH) == [200]
    assert effects(live, "thinkific")["effects"] == {"user.created": 1, "enrollment.created": 1}


def dead_letters(stack: Stack, row_id: int) -> list[dict[str, Any]]:
    return rows(
        stack.runtime.engine,
        "SELECT id, step, failure_class, reason, status FROM dead_letters WHERE event_id = :e",
        e=row_id,
    )


def test_a_tampered_body_under_genuine_headers_is_dead_lettered_and_delivers_nothing(
    live: Stack,
) -> None:
    # Given a genuine capture webhook whose amount is changed in transit
    bought = buy(live, "mallory.paypal@example.com")
    tampered = bought["body"].replace('"value": "21.12"', '"value": "0.01"')
    assert tampered != bought["body"]

    # When it arrives with the genuine transmission headers
    answer = deliver(live, bought, tampered)

    # Then the edge accepts it (the headers are well formed and fresh) but PayPal's postback fails
    # it: kept as a dead letter to look at (FAILURE is as likely our own webhook_id), not rejected
    assert answer.status_code == 202, answer.text
    row = wait_until(
        lambda: event_of(live, bought["event_id"]), lambda e: e["status"] == "failed", timeout=60
    )
    assert (row["reason"], row["canonical_type"]) == ("postback_failed", None)
    [dead] = dead_letters(live, row["id"])
    assert (dead["step"], dead["failure_class"], dead["reason"]) == (
        "verify",
        "configuration",
        "postback_failed",
    )
    assert calls(live, VERIFY_PATH) == [200]
    # nothing was fetched, planned or delivered
    assert [c for c in live.sandbox_state.calls if "/v2/" in c.path] == []
    assert scalar(live.runtime.engine, "SELECT count(*) FROM deliveries") == 0
    for provider in ("thinkific", "mailchimp", "mixpanel"):
        assert effects(live, provider) == {}


def test_a_wrong_webhook_id_dead_letters_genuine_payments_until_fixed_and_replayed(
    live: Stack,
) -> None:
    # Given the payments worker runs with a webhook_id PayPal does not know (a sandbox id on live)
    live.restart_worker("payments", env={"PAYPAL_WEBHOOK_ID": "5WR0NG0WEBHOOK0ID0SANDBOX"})
    try:
        # When a genuine capture arrives
        bought = buy(live, "ada.misconfigured@example.com")
        assert deliver(live, bought).status_code == 202

        # Then it is not silently rejected: dead-lettered as configuration, and alerted
        row = wait_until(
            lambda: event_of(live, bought["event_id"]),
            lambda e: e["status"] == "failed",
            timeout=60,
        )
        [dead] = dead_letters(live, row["id"])
        assert (dead["failure_class"], dead["reason"], dead["status"]) == (
            "configuration",
            "postback_failed",
            "open",
        )
        [alert] = rows(live.runtime.engine, "SELECT kind, subject, severity, message FROM alerts")
        assert (alert["kind"], alert["subject"], alert["severity"]) == (
            "dead_letter",
            "source:paypal:verify",
            "critical",
        )
        assert "webhook_id" in alert["message"]
    finally:
        # When the creator fixes the setting (the worker restarts with the right webhook_id)
        live.restart_worker("payments")

    # and replays the dead letter
    assert replay(live.runtime, dead["id"]).outcome == "replayed"

    # Then the payment is verified and delivered, once
    settled(live, bought["event_id"], PURCHASE_ACTIONS)
    assert event_of(live, bought["event_id"])["status"] == "processed"
    assert calls(live, VERIFY_PATH) == [200, 200]
    assert effects(live, "thinkific")["effects"] == {"user.created": 1, "enrollment.created": 1}


def test_a_pending_capture_waits_and_delivers_nothing(live: Stack) -> None:
    bought = buy(live, "pending.paypal@example.com", capture_status="PENDING")
    assert deliver(live, bought).status_code == 202
    row = wait_until(
        lambda: event_of(live, bought["event_id"]), lambda e: e["status"] == "waiting", timeout=60
    )
    assert row["reason"] == "payment_not_final"
    assert scalar(live.runtime.engine, "SELECT count(*) FROM deliveries") == 0


def test_a_full_refund_takes_the_course_back_once(live: Stack) -> None:
    # Given a delivered PayPal purchase
    bought = buy(live, "refund.paypal@example.com")
    assert deliver(live, bought).status_code == 202
    settled(live, bought["event_id"], PURCHASE_ACTIONS)

    # When the creator refunds it in full and PayPal sends PAYMENT.CAPTURE.REFUNDED
    refunded = paypal(live, f"captures/{bought['capture']}/refund")
    assert deliver(live, refunded).status_code == 202

    # Then one purchase.refunded revokes the enrollment and is tracked
    row = settled(live, refunded["event_id"], {"courses.unenroll", "analytics.track"})
    assert row["canonical_type"] == "purchase.refunded"
    assert row["canonical"]["key"] == f"paypal:{refunded['refund']}:refunded"
    assert row["canonical"]["purchase"]["id"] == bought["order"]
    thinkific = effects(live, "thinkific")["effects"]
    assert (thinkific["enrollment.created"], thinkific["enrollment.expired"]) == (1, 1)
    assert effects(live, "mixpanel") == {"effects": {"event.imported": 2}, "duplicates": {}}
