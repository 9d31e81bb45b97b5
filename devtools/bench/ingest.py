"""Ingest: signed Stripe webhooks per second and latency at several concurrencies, for the full
receiver and, in the same run and gunicorn configuration, the empty and the minimal endpoints."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from devtools.bench import traffic
from devtools.bench.baselines import create_table
from devtools.bench.loadgen import send
from devtools.bench.system import SystemUnderTest, free_port
from devtools.local.supervisor import Child
from pipeline.keys import LANES

ENDPOINTS = {
    "empty endpoint": "devtools.bench.baselines:empty_app()",
    "minimal durable endpoint": "devtools.bench.baselines:minimal_app()",
}


@dataclass
class IngestRow:
    endpoint: str
    concurrency: int
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def start_baselines(system: SystemUnderTest) -> dict[str, str]:
    create_table(system.settings.libpq_url)
    urls = {"receiver": system.receiver_url}
    for name, target in ENDPOINTS.items():
        port = free_port()
        env = {**system.env, "STACKWIRE_PORT": str(port)}
        system.add(
            Child(
                name,
                [sys.executable, "-m", "gunicorn", "-c", "python:receivers.gunicorn_conf", target],
                env,
            )
        )
        urls[name] = f"http://127.0.0.1:{port}"
    time.sleep(3)  # gunicorn boots its workers
    return urls


def measure(system: SystemUnderTest, levels: tuple[int, ...], per_level: int) -> list[IngestRow]:
    """Workers are held so they do not compete for the cores while the edge is measured."""
    for lane in LANES:
        system.hold(f"worker-{lane}")
    urls = start_baselines(system)
    rows = []
    try:
        for concurrency in levels:
            for endpoint, url in urls.items():
                events = traffic.synthetic_checkout_events(per_level)
                requests = [traffic.signed_stripe(event) for event in events]
                send(url, requests[: per_level // 10], concurrency=concurrency)  # warm up
                report = send(url, requests[per_level // 10 :], concurrency=concurrency)
                rows.append(
                    IngestRow(
                        endpoint,
                        concurrency,
                        round(report.per_second),
                        round(report.percentile(0.5), 2),
                        round(report.percentile(0.99), 2),
                        sum(report.errors.values())
                        + sum(n for s, n in report.statuses.items() if s >= 300),
                    )
                )
    finally:
        for name in ENDPOINTS:
            system.hold(name)
        for lane in LANES:
            system.release(f"worker-{lane}")
    return rows
