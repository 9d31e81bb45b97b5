"""The e-mail tools through real workers: a subscriber reaches every tool once, however often told.

Flows (tests/fixtures/config/50-email.toml): a Mailchimp subscribe or unsubscribe goes to Kit and
ActiveCampaign; a Kit or ActiveCampaign subscribe goes to Mailchimp (the base `email` destination).
Webhooks come from the sandbox's own control helpers, as each tool would send them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import requests

from tests.support.db import counts, rows
from tests.support.stack import Stack
from tests.support.waiting import wait_until

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MAILCHIMP = "/webhooks/mailchimp_audience?key=mc_url_key_current"
KIT_SECRET = "kit_whsec_current"


def control(stack: Stack, path: str, spec: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(f"{stack.sandbox.url}/_sandbox/{path}", json=spec, timeout=10)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def mailchimp_hook(stack: Stack, kind: str, email: str, **spec: str) -> bytes:
    made = control(stack, f"mailchimp/lists/list0001/webhooks/{kind}", {"email": email, **spec})
    return str(made["body"]).encode()


def post(stack: Stack, path: str, body: bytes, headers: dict[str, str] = FORM) -> int:
    return requests.post(
        f"{stack.receiver.url}{path}", data=body, headers=headers, timeout=10
    ).status_code


def delivered(stack: Stack) -> dict[str, int]:
    return counts(stack.runtime.engine, "SELECT status, count(*) FROM deliveries GROUP BY status")


def effects(stack: Stack, provider: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.sandbox_state.summary()["providers"].get(provider, {})
    return found


def writes(stack: Stack) -> Counter[str]:
    return Counter(f"{c.method} {c.path}" for c in stack.sandbox_state.calls if c.method != "GET")


def test_a_mailchimp_subscribe_redelivered_reaches_kit_and_activecampaign_once(live: Stack) -> None:
    # Given three people who subscribed in Mailchimp
    people = [f"reader{i}@example.com" for i in range(3)]
    bodies = [
        mailchimp_hook(live, "subscribe", email, first_name=f"Reader{i}")
        for i, email in enumerate(people)
    ]

    # When Mailchimp delivers each webhook twice
    statuses = Counter(post(live, MAILCHIMP, body) for body in bodies + bodies)

    # Then each is stored once, and each person is subscribed and tagged in both tools once
    assert statuses == {202: 3, 200: 3}
    wait_until(lambda: delivered(live), lambda seen: seen.get("delivered") == 6, timeout=120)
    assert effects(live, "kit") == {
        "effects": {"subscriber.created": 3, "tag.created": 1, "subscriber.tagged": 3},
        "duplicates": {},
    }
    assert effects(live, "activecampaign") == {
        "effects": {
            "contact.created": 3,
            "contact_list.subscribed": 3,
            "tag.created": 1,
            "contact_tag.created": 3,
        },
        "duplicates": {},
    }
    # and no writing call was ever made twice
    made = writes(live)
    assert made["POST /kit/v4/subscribers"] == 3
    assert made["POST /activecampaign/api/3/contact/sync"] == 3
    assert made["POST /activecampaign/api/3/contactLists"] == 3
    assert made["POST /activecampaign/api/3/contactTags"] == 3
    found = rows(live.runtime.engine, "SELECT canonical_type, status FROM events")
    assert Counter((r["canonical_type"], r["status"]) for r in found) == {
        ("subscriber.added", "processed"): 3
    }


def test_a_mailchimp_subscribe_never_resubscribes_someone_who_left_kit_or_activecampaign(
    live: Stack,
) -> None:
    # Given a reader who unsubscribed from the Kit account and the ActiveCampaign list
    email = "gone.reader@example.com"
    control(live, "kit/webhooks", {"event": "subscriber.unsubscribed", "email": email})
    control(live, "activecampaign/webhooks", {"type": "unsubscribe", "email": email})
    # When they (re)subscribe on Mailchimp, which feeds both
    assert post(live, MAILCHIMP, mailchimp_hook(live, "subscribe", email)) == 202
    wait_until(lambda: delivered(live), lambda seen: seen.get("delivered") == 2, timeout=90)
    # Then both tools keep them unsubscribed: only they can opt back in there
    kit = live.sandbox_state.store("kit", "subscribers").values()
    assert [s["state"] for s in kit if s["email_address"] == email] == ["cancelled"]
    lists = live.sandbox_state.store("activecampaign", "contact_lists")
    assert list(lists.values()) == ["2"]
    assert "contact_list.subscribed" not in effects(live, "activecampaign").get("effects", {})
    assert writes(live)["POST /activecampaign/api/3/contactLists"] == 0


def test_an_unsubscribe_redelivered_reaches_both_once_and_an_older_subscribe_arriving_late_is_ignored(
    live: Stack,
) -> None:
    # Given a subscriber known to both tools
    email = "leaver@example.com"
    assert (
        post(
            live,
            MAILCHIMP,
            mailchimp_hook(live, "subscribe", email, fired_at="2026-03-01 10:00:00"),
        )
        == 202
    )
    wait_until(lambda: delivered(live), lambda seen: seen.get("delivered") == 2, timeout=90)

    # When they unsubscribe, the webhook arrives twice, and then a subscribe fired before the
    # unsubscribe finally gets through (Mailchimp retries for 75 minutes)
    gone = mailchimp_hook(live, "unsubscribe", email, fired_at="2026-03-01 10:05:00")
    assert [post(live, MAILCHIMP, gone), post(live, MAILCHIMP, gone)] == [202, 200]
    wait_until(lambda: delivered(live), lambda seen: seen.get("delivered") == 4, timeout=90)
    late = mailchimp_hook(live, "subscribe", email, fired_at="2026-03-01 10:02:00")
    assert post(live, MAILCHIMP, late) == 202

    # Then both tools unsubscribed them once, and the late subscribe changed nothing
    wait_until(
        lambda: rows(live.runtime.engine, "SELECT status, reason FROM events ORDER BY id"),
        lambda seen: len(seen) == 3 and seen[-1]["status"] == "ignored",
        timeout=60,
    )
    last = rows(live.runtime.engine, "SELECT reason FROM events ORDER BY id DESC LIMIT 1")
    assert last[0]["reason"] == "superseded_by_newer_state"
    assert delivered(live) == {"delivered": 4}
    assert effects(live, "kit")["effects"]["subscriber.unsubscribed"] == 1
    assert effects(live, "activecampaign")["effects"]["contact_list.unsubscribed"] == 1
    assert effects(live, "kit")["duplicates"] == effects(live, "activecampaign")["duplicates"] == {}
    assert sum(n for call, n in writes(live).items() if call.endswith("/unsubscribe")) == 1


def test_kit_and_activecampaign_subscribers_reach_mailchimp_once_and_a_batch_is_dead_lettered(
    live: Stack,
) -> None:
    # Given a Kit activation (signed) and an ActiveCampaign subscription, each delivered twice
    kit = control(
        live,
        "kit/webhooks",
        {"event": "subscriber.activated", "email": "kit-fan@example.com", "secret": KIT_SECRET},
    )
    kit_statuses = [
        post(live, "/webhooks/kit", kit["body"].encode(), kit["headers"]) for _ in range(2)
    ]
    ac = control(
        live, "activecampaign/webhooks", {"type": "subscribe", "email": "ac-fan@example.com"}
    )
    ac_statuses = [
        post(live, "/webhooks/activecampaign?key=ac_url_key", ac["body"].encode()) for _ in range(2)
    ]
    # and a bulk action in Kit that batches two events into one delivery
    batch = control(
        live,
        "kit/webhooks",
        {
            "event": "subscriber.activated",
            "secret": KIT_SECRET,
            "emails": ["bulk1@example.com", "bulk2@example.com"],
        },
    )
    assert post(live, "/webhooks/kit", batch["body"].encode(), batch["headers"]) == 202

    # Then each single one becomes one Mailchimp member, and the batch waits for an operator, whole
    assert (kit_statuses, ac_statuses) == ([202, 200], [202, 200])
    wait_until(lambda: delivered(live), lambda seen: seen.get("delivered") == 2, timeout=90)
    assert effects(live, "mailchimp") == {"effects": {"member.created": 2}, "duplicates": {}}
    letters = wait_until(
        lambda: rows(live.runtime.engine, "SELECT reason, failure_class FROM dead_letters"),
        lambda seen: len(seen) == 1,
        timeout=60,
    )
    assert letters == [{"reason": "batched_delivery", "failure_class": "contract"}]
