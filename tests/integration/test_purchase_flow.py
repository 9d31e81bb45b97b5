"""A Stripe checkout becomes an enrollment, a subscriber and an analytics event: exactly once."""

from __future__ import annotations

from collections import Counter

from devtools import simulate
from tests.support.db import counts
from tests.support.stack import Stack
from tests.support.stripe_events import SECRET
from tests.support.waiting import wait_until

PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"


def delivered(stack: Stack) -> dict[str, int]:
    return counts(stack.runtime.engine, "SELECT status, count(*) FROM deliveries GROUP BY status")


def test_200_purchases_40_redelivered_and_shuffled_make_200_enrollments_and_nothing_twice(
    live: Stack,
) -> None:
    # Given 200 completed checkouts in the sandbox's Stripe
    events = simulate.create_purchases(live.sandbox.url, 200, price=PRICE, amount=4900)
    deliveries = simulate.plan_deliveries(events, redeliver=0.2, seed=11)
    assert Counter(d.copy for d in deliveries) == {0: 200, 1: 40}

    # When their webhooks arrive from 8 concurrent senders, 40 of them twice, in shuffled order
    report = simulate.send_all(
        f"{live.receiver.url}/webhooks/stripe",
        deliveries,
        simulate.stripe_signer(SECRET),
        rate=0,
        concurrency=8,
    )

    # Then each is accepted once, every redelivery is acknowledged as a duplicate
    assert report.statuses == {202: 200, 200: 40}
    assert not report.errors
    # and every action is delivered
    wait_until(lambda: delivered(live), lambda seen: seen.get("delivered") == 600, timeout=120)
    summary = live.sandbox_state.summary()["providers"]
    assert summary["thinkific"] == {
        "effects": {"user.created": 200, "enrollment.created": 200},
        "duplicates": {},
    }
    assert summary["mailchimp"] == {"effects": {"member.created": 200}, "duplicates": {}}
    assert summary["mixpanel"] == {"effects": {"event.imported": 200}, "duplicates": {}}
    # and no call with a side effect was ever made twice
    posts = Counter(
        (c.path, c.status) for c in live.sandbox_state.calls if c.method in ("POST", "PUT")
    )
    assert posts[("/thinkific/api/public/v1/enrollments", 201)] == 200
    assert posts[("/thinkific/api/public/v1/users", 201)] == 200
    assert posts[("/mailchimp/3.0/lists/list0001/members/", 200)] == 0  # paths carry the hash
    assert (
        sum(
            n
            for (path, _), n in posts.items()
            if path.startswith("/mailchimp") and "/tags" not in path
        )
        == 200
    )
