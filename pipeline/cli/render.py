"""What the operator commands print on a terminal: rich tables, a timeline, a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()


def _time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def _more(cursor: str | None) -> None:
    if cursor:
        console.print(f"more: --cursor {cursor}")


def events_table(rows: list[dict[str, Any]], cursor: str | None) -> None:
    table = Table("id", "received (UTC)", "source", "type", "canonical", "status", "deliveries")
    for row in rows:
        deliveries = ", ".join(f"{k} {v}" for k, v in sorted(row["deliveries"].items()))
        table.add_row(
            str(row["id"]),
            _time(row["received_at"]),
            row["source"],
            row["provider_type"],
            row["canonical_type"] or "",
            row["status"],
            deliveries,
        )
    console.print(table)
    _more(cursor)


def dead_letters_table(rows: list[dict[str, Any]], cursor: str | None) -> None:
    table = Table("id", "event", "at (UTC)", "step", "destination", "class", "reason", "status")
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["event_id"]),
            _time(row["created_at"]),
            row["step"],
            row["destination"] or "",
            row["failure_class"],
            row["reason"],
            row["status"],
        )
    console.print(table)
    _more(cursor)


def timeline(document: dict[str, Any]) -> None:
    """One line per step, delivery attempt and dead letter, in time order."""
    event = document["event"]
    console.print(
        f"[bold]event {event['id']}[/] {event['source']} {event['provider_type']} "
        f"{event['provider_event_id']} → {event['canonical_type'] or '-'} "
        f"[{event['status']}] trace {event['trace_id'] or '-'}"
    )
    request = document["request"]
    lines: list[tuple[Any, str]] = [
        (
            event["received_at"],
            f"received via {request['origin']}, {request['body_bytes']} bytes, "
            f"secret {request['secret_matched'] or '-'}",
        )
    ]
    for step in document["steps"]:
        took = f" {step['duration_ms']:.0f} ms" if step["duration_ms"] is not None else ""
        detail = step["detail"] or {}
        why = f" ({detail['reason']})" if "reason" in detail else ""
        lines.append((step["at"], f"{step['step']}: {step['outcome']}{why}{took}"))
    for delivery in document["deliveries"]:
        for attempt in delivery["attempt_log"]:
            status = attempt["http_status"] or "-"
            error = f" {attempt['error_class']}" if attempt["error_class"] else ""
            lines.append(
                (
                    attempt["started_at"],
                    f"{delivery['action']} #{attempt['number']}: {attempt['outcome']} "
                    f"HTTP {status}{error} {attempt['duration_ms']:.0f} ms "
                    f"key {delivery['idempotency_key']}",
                )
            )
    for letter in document["dead_letters"]:
        lines.append(
            (
                letter["created_at"],
                f"dead letter {letter['id']}: {letter['step']} {letter['failure_class']} "
                f"{letter['reason']} [{letter['status']}]",
            )
        )
    for entry in document["audit"]:
        lines.append(
            (entry["at"], f"audit: {entry['actor']} {entry['action']} {entry['reason'] or ''}")
        )
    for at, text in sorted(lines, key=lambda pair: _time(pair[0])):
        console.print(f"  {_time(at)}  {text}", highlight=False, markup=False)
    summary = ", ".join(f"{d['action']} {d['status']}" for d in document["deliveries"])
    console.print(f"  deliveries: {summary or 'none'}", highlight=False)
    for entry in document.get("log_lines", []):
        console.print(
            f"  log {entry.get('ts', '')} {entry.get('component', '')}: {entry.get('msg', '')}",
            highlight=False,
            markup=False,
        )


def plan(progress: dict[str, Any]) -> None:
    table = Table("plan", "mode", "status", "items", "done", "estimate")
    table.add_row(
        progress["plan_id"],
        progress["mode"] + (" (force)" if progress.get("force") else ""),
        progress["status"],
        str(progress["count"]),
        str(progress.get("done", 0)),
        f"{progress['estimated_seconds']} s",
    )
    console.print(table)
    for title, counts in (
        ("by destination", progress["by_destination"]),
        ("by failure class", progress["by_failure_class"]),
        ("provider calls", progress["provider_calls"]),
        ("by outcome", progress.get("by_outcome", {})),
    ):
        if counts:
            console.print(f"{title}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if progress["sample_event_ids"]:
        console.print("sample events: " + " ".join(map(str, progress["sample_event_ids"])))


@contextmanager
def progress(show: bool) -> Iterator[Callable[[int, int], None]]:
    if not show:
        yield lambda done, total: None
        return
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("replay", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def destinations_table(rows: list[dict[str, Any]]) -> None:
    table = Table("destination", "provider", "paused", "circuit", "open", "held", "dead", "rate")
    for row in rows:
        rate = row["rate_limit"]["per_second"]
        table.add_row(
            row["name"],
            row["provider"],
            "yes" if row["paused"] else "no",
            row["circuit"],
            str(row["open"]),
            str(row["held"]),
            str(row["dead"]),
            f"{rate:g}/s" if rate else "-",
        )
    console.print(table)


def audit_table(rows: list[dict[str, Any]]) -> None:
    table = Table("id", "at (UTC)", "actor", "action", "target / plan", "reason", "counts")
    for row in rows:
        table.add_row(
            str(row["id"]),
            _time(row["at"]),
            row["actor"],
            row["action"],
            row["target"] or row["plan_id"] or "",
            row["reason"] or "",
            ", ".join(f"{k} {v}" for k, v in (row["counts"] or {}).items()),
        )
    console.print(table)
