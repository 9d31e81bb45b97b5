"""An event's log lines from this host: every process `stackwire up` starts also writes its JSON
lines under the data directory (STACKWIRE_LOG_DIR); a trace reads back the ones naming the
event or its trace id. Lines are already redacted when written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_LINES = 200


def lines_of(log_dir: Path, *, event_id: int, trace_id: str | None) -> list[dict[str, Any]]:
    if not log_dir.is_dir():
        return []
    found: list[dict[str, Any]] = []
    for path in sorted(log_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if str(event_id) not in line and (not trace_id or trace_id not in line):
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("event_id") == event_id or (
                    trace_id and entry.get("trace_id") == trace_id
                ):
                    found.append(entry)
    found.sort(key=lambda entry: str(entry.get("ts", "")))
    return found[-MAX_LINES:]
