"""`stackwire simulate`: a provider's side of the wire, as a load generator.

For `purchases` it asks the sandbox's Stripe to complete N checkouts (customer, payment intent,
charge, session: what a real buyer causes), then sends the resulting `checkout.session.completed`
webhooks to the receiver, signed as Stripe signs them, at a fixed rate or as fast as possible,
from concurrent senders, with a chosen share delivered twice in shuffled order. Like Stripe it
retries on 5xx and connection errors, and it reports its own errors beside the latencies.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from pipeline.signatures.timestamped_hmac import timestamped_hmac_header

CREATE_CHUNK = 200


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)]


@dataclass
class Delivery:
    body: bytes
    event_id: str
    copy: int  # 0 = first delivery, 1 = a redelivery


@dataclass
class Report:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    event_ids: list[str] = field(default_factory=list)

    def percentile(self, share: float) -> float:
        return percentile(self.latencies_ms, share)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "statuses": dict(self.statuses),
            "errors": dict(self.errors),
            "per_second": round(self.sent / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": round(self.percentile(0.50), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "elapsed_s": round(self.elapsed, 2),
            "unique_events": len(set(self.event_ids)),
        }


class RateGate:
    """Spaces sends evenly across threads: at most `rate` per second (0 = unlimited)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            slot = max(self.next_at, time.monotonic())
            self.next_at = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def create_purchases(
    sandbox_url: str, count: int, *, price: str, amount: int
) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:8]
    events: list[dict[str, Any]] = []
    with requests.Session() as session:
        for start in range(0, count, CREATE_CHUNK):
            specs = [
                {
                    "email": f"buyer{run}{i}@example.com",
                    "name": f"Buyer {i}",
                    "price": price,
                    "amount": amount,
                }
                for i in range(start, min(start + CREATE_CHUNK, count))
            ]
            response = session.post(
                f"{sandbox_url}/_sandbox/stripe/purchases", json=specs, timeout=60
            )
            response.raise_for_status()
            events.extend(p["event"] for p in response.json()["purchases"])
    return events


def plan_deliveries(
    events: list[dict[str, Any]], redeliver: float, seed: int | None
) -> list[Delivery]:
    rng = random.Random(seed)
    deliveries = [Delivery(json.dumps(e).encode(), e["id"], 0) for e in events]
    again = rng.sample(deliveries, int(len(deliveries) * redeliver))
    deliveries += [Delivery(d.body, d.event_id, 1) for d in again]
    rng.shuffle(deliveries)
    return deliveries


def send_all(
    url: str,
    deliveries: list[Delivery],
    sign: Callable[[bytes], dict[str, str]],
    *,
    rate: float,
    concurrency: int,
    retries: int = 5,
) -> Report:
    report = Report()
    gate = RateGate(rate)
    lock = threading.Lock()
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        found: requests.Session = local.session
        return found

    def send(delivery: Delivery) -> None:
        gate.wait()
        for attempt in range(retries + 1):
            started = time.perf_counter()
            try:
                response = session().post(
                    url, data=delivery.body, headers=sign(delivery.body), timeout=30
                )
                status, error = response.status_code, None
            except requests.RequestException as exc:
                status, error = None, type(exc).__name__
            latency = (time.perf_counter() - started) * 1000
            with lock:
                report.sent += 1
                report.latencies_ms.append(latency)
                if status is not None:
                    report.statuses[status] += 1
                if error is not None:
                    report.errors[error] += 1
            if status is not None and status < 500:
                if status < 300:
                    with lock:
                        report.event_ids.append(delivery.event_id)
                return
            time.sleep(min(0.2 * 2**attempt, 5.0) * random.random())  # a provider's retry, jittered

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(send, deliveries))
    report.elapsed = time.perf_counter() - started
    return report


def stripe_signer(secret: str) -> Callable[[bytes], dict[str, str]]:
    def sign(body: bytes) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Stripe-Signature": timestamped_hmac_header(secret, body, int(time.time())),
        }

    return sign


def purchases(
    *,
    receiver_url: str,
    sandbox_url: str,
    source: str,
    secret: str,
    count: int,
    rate: float,
    concurrency: int,
    redeliver: float,
    price: str,
    amount: int = 4900,
    seed: int | None = None,
) -> Report:
    events = create_purchases(sandbox_url, count, price=price, amount=amount)
    deliveries = plan_deliveries(events, redeliver, seed)
    return send_all(
        f"{receiver_url}/webhooks/{source}",
        deliveries,
        stripe_signer(secret),
        rate=rate,
        concurrency=concurrency,
    )
