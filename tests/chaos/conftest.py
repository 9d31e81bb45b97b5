"""The fault-injection suite's table: scenario, events, lost, duplicated, time to drain."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.bench.system import SystemUnderTest, data_root

ROWS: list[dict[str, Any]] = []
PURCHASES = int(os.environ.get("CHAOS_PURCHASES", "1000"))


@pytest.fixture
def system_factory() -> Iterator[Any]:
    started: list[SystemUnderTest] = []

    def start(name: str, **options: Any) -> SystemUnderTest:
        options.setdefault("pool", {"payments": 2, "enrollments": 2, "analytics": 1})
        system = SystemUnderTest(data_root(f"chaos-{name}"), **options).start()
        started.append(system)
        return system

    yield start
    for system in started:
        system.stop()


def record(row: dict[str, Any]) -> None:
    ROWS.append(row)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    header = "| scenario | events | lost | duplicated | stuck | time to drain (s) | notes |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for row in ROWS:
        lines.append(
            f"| {row['scenario']} | {row['events']} | {row['lost']} | {row['duplicated']} | "
            f"{row['stuck']} | {row['drain']} | {row.get('notes', '')} |"
        )
    table = "\n".join(lines)
    terminalreporter.write_line("")
    terminalreporter.write_line(table)
    out = Path(os.environ.get("CHAOS_REPORT", "var/chaos-report.md"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Fault-injection results (`make chaos`)\n\n" + table + "\n")
