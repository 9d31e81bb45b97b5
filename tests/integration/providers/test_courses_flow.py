"""Course platforms through real workers: enrolled once, granted once, whatever is redelivered.

Flows (tests/fixtures/config/40-courses.toml): a purchase on the `stripe_courses` source enrolls in
Teachable and grants the Kajabi offer, a refund takes both back; a Kajabi purchase enrolls in
Teachable; a completed enrollment on Thinkific or Teachable is tracked in analytics. The base flows
(Thinkific, Mailchimp, Mixpanel) also run on these purchases: only our actions are counted here.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from pipeline.signatures.body_hmac import body_hmac
from tests.support.db import counts, rows
from tests.support.stack import Stack
from tests.support.stripe_events import signed
from tests.support.waiting import wait_until

THINKIFIC_KEY = "thinkific_test_key"
KAJABI_URL_SECRET = "kajabi-url-secret-5d81e2"
TEACHABLE_URL_SECRET = "teachable-url-secret-7f3a9c"


def control(stack: Stack, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = requests.post(f"{stack.sandbox.url}/_sandbox/{path}", json=body or {}, timeout=10)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def post(stack: Stack, source: str, hook: dict[str, Any], key: str) -> int:
    body, headers = hook["body"].encode(), hook["headers"]
    url = f"{stack.receiver.url}/webhooks/{source}?key={key}"
    return requests.post(url, data=body, headers=headers, timeout=10).status_code


def post_stripe(stack: Stack, event: dict[str, Any]) -> list[int]:
    first = stack.post_webhook("stripe_courses", *signed(event))
    # Stripe re-signs each delivery: a redelivery differs in its header, not in its event id
    again = stack.post_webhook("stripe_courses", *signed(event, timestamp=int(time.time()) + 1))
    return [first.status_code, again.status_code]


def delivered(stack: Stack, *actions: str) -> dict[str, int]:
    found = counts(
        stack.runtime.engine,
        "SELECT action || ':' || status, count(*) FROM deliveries "
        "WHERE action = ANY(:actions) GROUP BY 1",
        actions=list(actions),
    )
    return dict(found)


def effects(stack: Stack, provider: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.sandbox_state.summary()["providers"].get(provider, {})
    return found


def test_a_course_purchase_redelivered_enrolls_and_grants_once_and_a_refund_takes_both_back(
    live: Stack,
) -> None:
    # Given a Stripe checkout of the course bundle (Teachable course 7001, Kajabi offer 9001)
    bought = control(
        live,
        "stripe/purchases",
        {
            "email": "Ada.Lovelace@example.com",
            "name": "Ada Lovelace",
            "price": "price_course_bundle",
        },
    )

    # When its webhook arrives twice
    assert post_stripe(live, bought["event"]) == [202, 200]

    # Then the student is enrolled in Teachable and granted the Kajabi offer, each once
    mine = ("teachable.enroll", "kajabi.enroll")
    wait_until(
        lambda: delivered(live, *mine),
        lambda d: d == {"teachable.enroll:delivered": 1, "kajabi.enroll:delivered": 1},
    )
    assert effects(live, "teachable") == {
        "effects": {"user.created": 1, "enrollment.created": 1},
        "duplicates": {},
    }
    assert effects(live, "kajabi") == {
        "effects": {"token.issued": 1, "contact.created": 1, "offer.granted": 1},
        "duplicates": {},
    }
    teachable_user = next(iter(live.sandbox_state.store("teachable", "users").values()))
    assert teachable_user["email"] == "ada.lovelace@example.com"

    # When the charge is refunded
    refund = control(live, f"stripe/charges/{bought['charge']}/refund")
    assert live.post_webhook("stripe_courses", *signed(refund["event"])).status_code == 202

    # Then both are taken back, once
    gone = ("teachable.unenroll", "kajabi.unenroll")
    wait_until(
        lambda: delivered(live, *gone),
        lambda d: d == {"teachable.unenroll:delivered": 1, "kajabi.unenroll:delivered": 1},
    )
    assert effects(live, "teachable")["effects"]["enrollment.disabled"] == 1
    assert effects(live, "kajabi")["effects"]["offer.revoked"] == 1
    assert effects(live, "kajabi")["effects"]["token.issued"] == 1  # the cached token served all


def test_a_kajabi_purchase_hook_enrolls_in_teachable_once(live: Stack) -> None:
    hook = control(
        live,
        "kajabi/purchases",
        {
            "email": "grace@example.com",
            "name": "Grace Hopper",
            "offer_id": "9002",
            "amount_in_cents": 19900,
        },
    )
    assert post(live, "kajabi", hook, "wrong-secret") == 401
    assert [post(live, "kajabi", hook, KAJABI_URL_SECRET) for _ in range(2)] == [202, 200]

    wait_until(
        lambda: delivered(live, "teachable.enroll"),
        lambda d: d == {"teachable.enroll:delivered": 1},
    )
    event = rows(
        live.runtime.engine, "SELECT status, canonical FROM events WHERE source = 'kajabi'"
    )
    assert len(event) == 1 and event[0]["status"] == "processed"
    assert event[0]["canonical"]["key"] == f"kajabi:purchase:{hook['purchase']}"
    assert event[0]["canonical"]["purchase"]["items"][0]["product"] == "kajabi:offer:9002"
    assert effects(live, "teachable") == {
        "effects": {"user.created": 1, "enrollment.created": 1},
        "duplicates": {},
    }
    enrolled = next(iter(live.sandbox_state.store("teachable", "enrollments")))
    assert enrolled[1] == 7002


def test_a_thinkific_completion_becomes_enrollment_completed_tracked_once(live: Stack) -> None:
    created = control(
        live,
        "thinkific/enrollments",
        {
            "email": "linus@example.com",
            "first_name": "Linus",
            "course_id": 68,
            "secret": THINKIFIC_KEY,
        },
    )
    completed = control(
        live,
        f"thinkific/enrollments/{created['event']['payload']['id']}/complete",
        {"secret": THINKIFIC_KEY},
    )
    forged = {
        **completed,
        "headers": {
            **completed["headers"],
            "X-Thinkific-Hmac-Sha256": body_hmac("not-the-key", b"x"),
        },
    }
    assert post(live, "thinkific", forged, "") == 401
    assert [post(live, "thinkific", completed, "") for _ in range(2)] == [202, 200]

    wait_until(
        lambda: delivered(live, "analytics.track"), lambda d: d == {"analytics.track:delivered": 1}
    )
    event = rows(
        live.runtime.engine, "SELECT provider_type, status, canonical_type, canonical FROM events"
    )
    assert [(e["provider_type"], e["status"], e["canonical_type"]) for e in event] == [
        ("enrollment.completed", "processed", "enrollment.completed")
    ]
    assert event[0]["canonical"]["contact"]["email"] == "linus@example.com"  # read from the API
    assert effects(live, "mixpanel") == {"effects": {"event.imported": 1}, "duplicates": {}}


def test_teachable_hooks_map_a_sale_and_a_completion(live: Stack) -> None:
    sale = control(
        live,
        "teachable/sales",
        {
            "email": "alan@example.com",
            "name": "Alan Turing",
            "course_id": 7001,
            "pricing_plan_id": 7101,
        },
    )
    user_id = json.loads(sale["body"])[0]["object"]["user_id"]
    done = control(live, f"teachable/enrollments/{user_id}/7001/complete")
    for hook in (sale, done, done):
        post(live, "teachable", hook, TEACHABLE_URL_SECRET)

    def mapped() -> list[tuple[Any, ...]]:
        found = rows(
            live.runtime.engine,
            "SELECT provider_type, status, canonical_type FROM events ORDER BY id",
        )
        return [tuple(r.values()) for r in found]

    wait_until(
        mapped,
        lambda m: (
            m
            == [
                ("Transaction.created", "processed", "purchase.completed"),
                ("Enrollment.completed", "processed", "enrollment.completed"),
            ]
        ),
    )
    wait_until(
        lambda: delivered(live, "analytics.track"), lambda d: d == {"analytics.track:delivered": 2}
    )  # the sale (base flow) and the completion
