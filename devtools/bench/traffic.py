"""Signed webhook traffic for the benchmark and the fault-injection suite."""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

from devtools.bench.loadgen import Request
from devtools.sandbox.stripe import fixtures
from devtools.simulate import create_purchases
from pipeline.signatures.standard_webhooks import standard_webhooks_headers
from pipeline.signatures.timestamped_hmac import timestamped_hmac_header

# the signing secrets bench.toml configures: sandbox-only values, like the demo config's
STRIPE_SECRET = "whsec_bench_secret"  # noqa: S105
EVENTS_SECRET = "whsec_YmVuY2gtYW5hbHl0aWNzLWV2ZW50cy1zZWNyZXQ="  # noqa: S105
PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"


def signed_stripe(event: dict[str, Any], path: str = "/webhooks/stripe") -> Request:
    body = json.dumps(event).encode()
    header = timestamped_hmac_header(STRIPE_SECRET, body, int(time.time()))
    headers = {"Content-Type": "application/json", "Stripe-Signature": header}
    return Request(path, body, headers, event_id=event["id"])


def purchase_events(sandbox_url: str, count: int) -> list[dict[str, Any]]:
    """Real purchases in the sandbox's Stripe (so the fetch finds them) and their webhooks."""
    return create_purchases(sandbox_url, count, price=PRICE, amount=4900)


def synthetic_checkout_events(count: int) -> list[dict[str, Any]]:
    """Checkout webhooks shaped like Stripe's, with unique ids, for ingest-only measurements."""
    objects = fixtures()
    template = copy.deepcopy(objects["event"])
    session = copy.deepcopy(objects["checkout.session"])
    session.update(payment_status="paid", status="complete", amount_total=4900, currency="usd")
    events = []
    for number in range(count):
        event = copy.deepcopy(template)
        event.update(
            id=f"evt_bench{uuid.uuid4().hex[:20]}",
            type="checkout.session.completed",
            created=int(time.time()),
            data={"object": {**session, "id": f"cs_test_b{number}"}},
        )
        events.append(event)
    return events


def analytics_requests(count: int, *, name: str = "page_view") -> list[Request]:
    """Standard Webhooks envelopes of `analytics.<name>` events for the `events` source."""
    now = int(time.time())
    requests = []
    for number in range(count):
        event_id = f"msg_{uuid.uuid4().hex}"
        envelope = {
            "id": event_id,
            "type": f"analytics.{name}",
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "data": {
                "analytics": {
                    "name": name,
                    "distinct_id": f"visitor-{number % 5000}",
                    "properties": {"path": f"/p/{number % 50}"},
                }
            },
        }
        body = json.dumps(envelope).encode()
        headers = {
            "Content-Type": "application/json",
            **standard_webhooks_headers(EVENTS_SECRET, event_id, now, body),
        }
        requests.append(Request("/webhooks/events", body, headers, event_id=event_id))
    return requests
