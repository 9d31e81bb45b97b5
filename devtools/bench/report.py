"""The benchmark's report: markdown tables with the targets beside, and by how much one is missed."""

from __future__ import annotations

import json
from typing import Any

from devtools.bench.run import Results

TARGETS = {
    "ingest_per_second": 1500,
    "ingest_p99_ms": 25,
    "e2e_per_second": 200,
    "cpu_ms_per_purchase": 10,
    "payments_p99_flooded_ms": 50,
    "worker_rss_mb": 150,
    "receiver_rss_mb": 100,
}


def verdict(value: float | None, target: float, *, higher_is_better: bool) -> str:
    if value is None:
        return "not measured"
    met = value >= target if higher_is_better else value <= target
    if met:
        return "met"
    gap = (target - value) / target if higher_is_better else (value - target) / target
    return f"missed by {gap * 100:.0f} %"


def render(results: Results, command: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Made with `{command}` on {results.machine.get('date')}. Every figure is measured on the real "
        "servers (PostgreSQL and Redis started for the run, on loopback), with the load generator "
        "on the same cores as the system. Nothing here is asserted by a test. Where the time goes "
        "and what was cut: `docs/performance.md`; projections past one machine: `docs/scaling.md`.",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in results.machine.items()],
        "",
        *ingest_section(results),
        *e2e_section(results),
        *scaling_section(results),
        *isolation_section(results),
        *search_section(results),
        "## Raw figures",
        "",
        "```json",
        json.dumps(
            {
                "e2e": results.e2e,
                "scaling": results.scaling,
                "isolation": results.isolation,
                "search": results.search,
            },
            indent=1,
            default=str,
        ),
        "```",
        "",
    ]
    return "\n".join(lines)


def ingest_section(results: Results) -> list[str]:
    lines = [
        "## Ingest: signed Stripe webhooks",
        "",
        "Same gunicorn configuration (`receivers/gunicorn_conf.py`) for all three endpoints, in the "
        "same run. The minimal durable endpoint checks the HMAC, does one INSERT and one LPUSH "
        "(`devtools/bench/baselines.py`).",
        "",
        "| endpoint | senders | webhooks/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for row in results.ingest:
        lines.append(
            f"| {row.endpoint} | {row.concurrency} | {row.per_second} | {row.p50_ms} | "
            f"{row.p99_ms} | {row.errors} |"
        )
    at32 = {row.endpoint: row for row in results.ingest if row.concurrency == 32}
    receiver, minimal = at32.get("receiver"), at32.get("minimal durable endpoint")
    if receiver and minimal:
        lines += [
            "",
            f"At 32 senders: {receiver.per_second}/s is "
            f"{receiver.per_second / max(minimal.per_second, 1) * 100:.0f} % of the minimal endpoint; "
            f"target 1,500/s: {verdict(receiver.per_second, 1500, higher_is_better=True)}; "
            f"p99 {receiver.p99_ms} ms against 25 ms: "
            f"{verdict(receiver.p99_ms, 25, higher_is_better=False)}.",
        ]
    return [*lines, ""]


def e2e_section(results: Results) -> list[str]:
    e2e = results.e2e
    if not e2e:
        return []
    latency: dict[str, Any] = e2e["latency_ms"]
    rss = e2e.get("peak_rss_mb", {})
    worker_rss = max((v for k, v in rss.items() if k.startswith("worker")), default=None)
    lines = [
        "## End to end: webhook in -> enrollment, subscription and analytics event delivered",
        "",
        f"{e2e['purchases']} purchases sent as fast as 16 senders go; one worker process per lane.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| purchases/s (first receipt to last delivery) | {e2e['per_second']} | 200: "
        f"{verdict(e2e['per_second'], 200, higher_is_better=True)} |",
        f"| CPU ms per purchase, Stackwire (receiver, workers, Beat, PostgreSQL, Redis) | "
        f"{e2e['stackwire_cpu_ms']} | 10: {verdict(e2e['stackwire_cpu_ms'], 10, higher_is_better=False)} |",
        f"| CPU ms per purchase, the provider sandbox | {e2e['sandbox_cpu_ms']} | |",
        f"| Redis commands (broker round trips) per purchase | {e2e['redis_commands_per_purchase']} | |",
        f"| event-log bytes per event (events + steps, indexes and TOAST included) | "
        f"{e2e['log_bytes_per_event']} | |",
        f"| delivery-ledger bytes per event (deliveries + attempts) | {e2e['delivery_bytes_per_event']} | |",
        f"| largest worker process, MB resident | {worker_rss} | 150: "
        f"{verdict(worker_rss, 150, higher_is_better=False)} |",
        f"| largest receiver process, MB resident | {rss.get('receiver')} | 100: "
        f"{verdict(rss.get('receiver'), 100, higher_is_better=False)} |",
        "",
        "CPU ms per purchase by component: "
        + ", ".join(f"{k} {v}" for k, v in e2e["cpu_ms_per_purchase"].items())
        + ".",
        "",
        "| latency (ms) | p50 | p99 |",
        "|---|---|---|",
    ]
    for name in ("payments (receipt to planned)", "start of delivery by lane", "delivered by lane"):
        lines.append(
            f"| {name} | {_lanes(latency['p50'][name])} | {_lanes(latency['p99'][name])} |"
        )
    lines += [
        "",
        "These latencies are measured with the whole burst queued at once: they show the "
        "backlog draining, not the latency of a single purchase (see isolation below).",
        "",
    ]
    return lines


def _lanes(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{lane} {ms}" for lane, ms in sorted(value.items()))
    return str(value)


def scaling_section(results: Results) -> list[str]:
    lines = [
        "## Scaling: worker processes per lane",
        "",
        "| processes per lane | purchases | purchases/s | Stackwire CPU ms/purchase |",
        "|---|---|---|---|",
    ]
    for row in results.scaling:
        lines.append(
            f"| {row['processes_per_lane']} | {row['purchases']} | {row['per_second']} | "
            f"{row['stackwire_cpu_ms']} |"
        )
    return [*lines, ""]


def isolation_section(results: Results) -> list[str]:
    iso = results.isolation
    if not iso:
        return []
    flooded = iso["flooded"].get("p99")
    return [
        "## Isolation: the payments lane under an analytics flood",
        "",
        f"Purchases at a steady rate, first with the analytics lane idle, then while "
        f"{iso['flood']:,} analytics events (real batched `/import` calls to the sandbox) are queued.",
        "",
        "| purchases (ms) | receipt to planned, p50 | p99 | receipt to start of delivery, p50 | p99 "
        "| target p99 |",
        "|---|---|---|---|---|---|",
        f"| analytics idle | {iso['idle'].get('p50')} | {iso['idle'].get('p99')} | "
        f"{iso['idle'].get('p50 start of delivery')} | {iso['idle'].get('p99 start of delivery')} | |",
        f"| analytics flooded | {iso['flooded'].get('p50')} | {flooded} | "
        f"{iso['flooded'].get('p50 start of delivery')} | {iso['flooded'].get('p99 start of delivery')} "
        f"| 50 (receipt to planned): {verdict(flooded, 50, higher_is_better=False)} |",
        "",
        f"Analytics events still unprocessed when the probe ended: "
        f"{iso['analytics_unprocessed_when_probe_ended']}.",
        "",
    ]


def search_section(results: Results) -> list[str]:
    found = results.search
    if not found:
        return []
    rows = [
        f"| {kind} | {figures['queries']} | {figures['p50']} | {figures['p99']} | {figures['max']} |"
        for kind, figures in found["ms"].items()
    ]
    worst = max(figures["p99"] for figures in found["ms"].values())
    return [
        f"## Search: an e-mail or a payment id among {found['events']:,} events",
        "",
        "`pipeline.ops.search.search_events`, as `GET /api/events?email=` and `stackwire events "
        f"search` run it, on a log of {found['events']:,} processed purchases (filled by COPY in "
        f"{found['fill_seconds']} s; the handles index is {found['handles_index_size']}).",
        "",
        "| query | count | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Target: under 200 ms: {verdict(worst, 200.0, higher_is_better=False)} (worst p99 "
        f"{worst} ms). The plan:",
        "",
        "```",
        *found["plan"],
        "```",
        "",
    ]
