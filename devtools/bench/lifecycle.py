"""Traffic for the chaos scenarios past a plain purchase: refunds, subscriptions in Stripe's
default flow, PayPal captures and refunds, and poison requests (scenarios 11-16).

Everything real is made in the sandbox first (so the workers' fetches find it), then turned into
signed `Request`s the load generator sends. What the scenarios check afterwards (who is enrolled,
which dead letters exist) is read back here too, from the sandbox's Thinkific API and the log.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests

from devtools.bench.loadgen import Request
from devtools.bench.traffic import PRICE, STRIPE_SECRET, signed_stripe
from pipeline.signatures.timestamped_hmac import timestamped_hmac_header

CHUNK = 200
PAYPAL_URL_SECRET = "paypal-url-secret-chaos"  # noqa: S105 - chaos.toml's signing secret
PAYPAL_WEBHOOK_ID = "8PT597110X687430LKGECATA"
PAYPAL_SKU = "paypal-course"
# what bench.toml's Thinkific destination authenticates with
THINKIFIC_HEADERS = {"X-Auth-API-Key": "thinkific_bench_key", "X-Auth-Subdomain": "bench-creator"}


@dataclass(frozen=True)
class Purchase:
    email: str
    event: dict[str, Any]  # the purchase's webhook (Stripe's event, or PayPal's transmission)
    charge: str  # Stripe charge id, or PayPal capture id


def _post(session: requests.Session, url: str, body: Any) -> Any:
    answer = session.post(url, json=body, timeout=60)
    answer.raise_for_status()
    return answer.json()


# -- Stripe: purchases, refunds, subscriptions ----------------------------------------------------


def stripe_purchases(sandbox_url: str, count: int) -> list[Purchase]:
    run = uuid.uuid4().hex[:8]
    found: list[Purchase] = []
    with requests.Session() as session:
        for start in range(0, count, CHUNK):
            specs = [
                {"email": f"buyer{run}{i}@example.com", "name": f"Buyer {i}", "price": PRICE}
                for i in range(start, min(start + CHUNK, count))
            ]
            made = _post(session, f"{sandbox_url}/_sandbox/stripe/purchases", specs)
            for spec, purchase in zip(specs, made["purchases"], strict=True):
                found.append(Purchase(spec["email"], purchase["event"], purchase["charge"]))
    return found


def stripe_refunds(sandbox_url: str, purchases: Iterable[Purchase]) -> list[dict[str, Any]]:
    """Each purchase refunded in full at Stripe; their `charge.refunded` webhooks."""
    with requests.Session() as session:
        return [
            _post(session, f"{sandbox_url}/_sandbox/stripe/charges/{p.charge}/refund", None)[
                "event"
            ]
            for p in purchases
        ]


@dataclass(frozen=True)
class Subscription:
    id: str
    email: str
    created: dict[str, Any]  # customer.subscription.created, sent while it is incomplete


def stripe_subscriptions(sandbox_url: str, count: int) -> list[Subscription]:
    """Subscriptions in Stripe's default_incomplete flow, created incomplete two minutes ago
    with their first invoice open; each with its `customer.subscription.created`."""
    run, now = uuid.uuid4().hex[:8], int(time.time())
    found: list[Subscription] = []
    with requests.Session() as session:
        for number in range(count):
            email = f"subscriber{run}{number}@example.com"
            spec = {"email": email, "name": f"Subscriber {number}", "price": PRICE, "at": now - 120}
            made = _post(session, f"{sandbox_url}/_sandbox/stripe/subscriptions", spec)
            found.append(Subscription(made["subscription"], email, made["event"]))
    return found


def pay_subscriptions(
    sandbox_url: str, subscriptions: Iterable[Subscription]
) -> list[dict[str, Any]]:
    """Each first invoice paid a minute ago: its `invoice.paid` and the subscription's
    `customer.subscription.updated` (incomplete -> active)."""
    paid_at = int(time.time()) - 60
    events: list[dict[str, Any]] = []
    with requests.Session() as session:
        for sub in subscriptions:
            url = f"{sandbox_url}/_sandbox/stripe/subscriptions/{sub.id}/pay"
            events.extend(_post(session, url, {"at": paid_at})["events"].values())
    return events


# -- PayPal -------------------------------------------------------------------------------------


def paypal_purchases(sandbox_url: str, count: int) -> list[Purchase]:
    run = uuid.uuid4().hex[:8]
    found: list[Purchase] = []
    with requests.Session() as session:
        for number in range(count):
            email = f"paypal{run}{number}@example.com"
            spec = {
                "email": email,
                "name": f"Payer {number}",
                "sku": PAYPAL_SKU,
                "amount": "21.12",
                "webhook_id": PAYPAL_WEBHOOK_ID,
            }
            made = _post(session, f"{sandbox_url}/_sandbox/paypal/purchases", spec)
            found.append(Purchase(email, made, made["capture"]))
    return found


def paypal_refunds(sandbox_url: str, purchases: Iterable[Purchase]) -> list[dict[str, Any]]:
    with requests.Session() as session:
        return [
            _post(
                session,
                f"{sandbox_url}/_sandbox/paypal/captures/{p.charge}/refund",
                {"webhook_id": PAYPAL_WEBHOOK_ID},
            )
            for p in purchases
        ]


def signed_paypal(webhook: dict[str, Any]) -> Request:
    """A PayPal transmission as PayPal sends it, to the URL carrying the source's secret."""
    return Request(
        f"/webhooks/paypal?key={PAYPAL_URL_SECRET}",
        webhook["body"].encode(),
        dict(webhook["headers"]),
        event_id=webhook["event_id"],
    )


def fail_paypal_verification(sandbox_url: str, *, seconds: float = 0.0, calls: int = 0) -> None:
    """PayPal's verify-webhook-signature answers FAILURE for genuine events meanwhile."""
    answer = requests.post(
        f"{sandbox_url}/_sandbox/paypal/verification",
        json={"fail_for": seconds, "fail_calls": calls},
        timeout=10,
    )
    answer.raise_for_status()


# -- poison ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Poison:
    request: Request
    status: int  # the answer the receiver must give
    code: str  # the error code in its answer (or "quarantined" for a 202 kept aside)


def poison_requests(count: int) -> list[Poison]:
    """`count` requests of each kind no lane must ever see: a raw NUL byte in the body (not JSON),
    an id of 3 kB, a signed Stripe body without a `type` (unreadable but authentic)."""
    found: list[Poison] = []
    for number in range(count):
        body = b'{"id": "evt_nul' + str(number).encode() + b'", "type": "x\x00y"}'
        found.append(Poison(_signed_raw(body, f"poison-nul-{number}"), 400, "malformed_json"))
        long_id = {"id": "evt_" + secrets.token_hex(1500), "type": "checkout.session.completed"}
        request = signed_stripe({**long_id, "data": {"object": {}}})
        found.append(
            Poison(
                Request(request.path, request.body, request.headers, f"poison-long-{number}"),
                400,
                "id_too_long",
            )
        )
        untyped = {"id": f"evt_untyped{uuid.uuid4().hex[:16]}", "data": {"object": {}}}
        request = signed_stripe(untyped)
        found.append(
            Poison(
                Request(request.path, request.body, request.headers, f"poison-untyped-{number}"),
                400,
                "missing_event_type",
            )
        )
    return found


def _signed_raw(body: bytes, label: str) -> Request:
    # signed_stripe signs what it serialises; a body that is not JSON is signed as bytes
    header = timestamped_hmac_header(STRIPE_SECRET, body, int(time.time()))
    headers = {"Content-Type": "application/json", "Stripe-Signature": header}
    return Request("/webhooks/stripe", body, headers, event_id=label)


def with_nul_in_name(event: dict[str, Any]) -> dict[str, Any]:
    """The same purchase webhook with U+0000 in the buyer's name (escaped, valid JSON): stored
    without it, processed like any other purchase."""
    copied = json.loads(json.dumps(event))
    details = copied["data"]["object"].setdefault("customer_details", {})
    details["name"] = f"{details.get('name') or 'Buyer'}\x00 (nul)"
    return copied


# -- reading back what happened -------------------------------------------------------------------


def thinkific_enrollments(sandbox_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every enrollment at the sandbox's Thinkific, by the enrolled user's e-mail."""
    found: dict[str, list[dict[str, Any]]] = {}
    page = 1
    with requests.Session() as session:
        while True:
            answer = session.get(
                f"{sandbox_url}/thinkific/api/public/v1/enrollments",
                params={"page": page, "limit": 1000},
                headers=THINKIFIC_HEADERS,
                timeout=60,
            )
            answer.raise_for_status()
            body = answer.json()
            for enrollment in body["items"]:
                found.setdefault(enrollment["user_email"], []).append(enrollment)
            if not body["meta"]["pagination"]["next_page"]:
                return found
            page += 1


def active(enrollments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in enrollments if not e["expired"]]
