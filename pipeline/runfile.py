"""The run file: what a running `stackwire up` started, so commands in another terminal find it.

`stackwire up` (devtools/local/up.py) writes `<STACKWIRE_DATA_DIR>/run.json` when it starts (its
pid), again once its servers answer (their URLs and ports), and removes it on a clean stop.
`Settings.from_env` reads it when DATABASE_URL or REDIS_URL are unset, so `stackwire dlq list`
beside `make run` talks to the embedded servers. A file whose process is gone (a SIGKILLed
`stackwire up`, a reboot) is stale: readers ignore it and the next `stackwire up` replaces it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

NAME = "run.json"
STARTING, READY = "starting", "ready"


@dataclass(frozen=True)
class RunRecord:
    pid: int
    # the process's start time (clock ticks after boot): a pid reused by another program after
    # a reboot or a kill is not mistaken for the run
    started: int | None
    state: str = STARTING
    data_dir: str | None = None
    config_path: str | None = None
    database_url: str | None = None
    redis_url: str | None = None
    broker_url: str | None = None
    # receiver, sandbox, flower, postgres, redis: where each listens
    ports: Mapping[str, int] = field(default_factory=dict)
    # the embedded servers it started: name -> pid
    servers: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def for_this_process(cls, **values: Any) -> RunRecord:
        return cls(pid=os.getpid(), started=process_start(os.getpid()), **values)

    def updated(self, **values: Any) -> RunRecord:
        return replace(self, **values)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=dict) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        """Raises ValueError for anything that is not a run file."""
        try:
            raw = json.loads(text)
            return cls(
                pid=int(raw["pid"]),
                started=None if raw.get("started") is None else int(raw["started"]),
                state=str(raw.get("state", STARTING)),
                data_dir=raw.get("data_dir"),
                config_path=raw.get("config_path"),
                database_url=raw.get("database_url"),
                redis_url=raw.get("redis_url"),
                broker_url=raw.get("broker_url"),
                ports={str(k): int(v) for k, v in (raw.get("ports") or {}).items()},
                servers={str(k): int(v) for k, v in (raw.get("servers") or {}).items()},
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a run file: {exc}") from None

    @property
    def alive(self) -> bool:
        return is_running(self.pid, self.started)


def path_in(data_dir: Path) -> Path:
    return data_dir / NAME


def read(data_dir: Path) -> RunRecord | None:
    """The run file as written, live or stale; None when there is none or it is unreadable."""
    try:
        return RunRecord.from_json(path_in(data_dir).read_text())
    except (OSError, ValueError):
        return None


def read_live(data_dir: Path) -> RunRecord | None:
    """The run file of a `stackwire up` that is still running, or None."""
    found = read(data_dir)
    return found if found is not None and found.alive else None


def is_running(pid: int, started: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    stat = _proc_stat(pid)
    if stat is None:  # no /proc to ask: the pid exists, trust it
        return True
    state, start = stat[0], int(stat[19])
    # a zombie has exited and waits for its parent; a different start time is another program
    return state != "Z" and (started is None or start == started)


def process_start(pid: int) -> int | None:
    """When the process started, in clock ticks after boot (Linux's /proc); None elsewhere."""
    stat = _proc_stat(pid)
    return None if stat is None else int(stat[19])


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from its third field on (state, ppid, ...), or None without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its closing one
    return stat[stat.rindex(")") + 2 :].split()
