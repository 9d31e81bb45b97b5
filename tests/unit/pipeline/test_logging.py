"""Log lines: readable text on a terminal, JSON anywhere else, routine library lines at debug.

Each case is a real process writing to a real pseudo-terminal or pipe, as `make run` and docker
would give it."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.commands import ROOT

LOG_TWO_LINES = """
import logging
from pipeline.logging import configure_logging
from pipeline.settings import Settings
configure_logging(Settings.from_env(), component="probe")
logging.getLogger("stackwire.probe").warning("delivered %s", 42)
logging.getLogger("celery.beat").info("Scheduler: Sending due task sweep-outbox (stackwire.sweep)")
"""


def logged(*, terminal: bool, tmp_path: Path, **env: str) -> list[str]:
    """What the probe process wrote to its stderr: a terminal's or a pipe's."""
    inherited = {k: v for k, v in os.environ.items() if k != "STACKWIRE_LOG_FORMAT"}
    environ = {**inherited, "STACKWIRE_DATA_DIR": str(tmp_path), **env}
    if not terminal:
        result = subprocess.run(
            [sys.executable, "-c", LOG_TWO_LINES],
            env=environ,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        return result.stderr.splitlines()
    controller, terminal_end = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-c", LOG_TWO_LINES], env=environ, stderr=terminal_end, cwd=ROOT
    ) as process:
        os.close(terminal_end)
        assert process.wait(timeout=30) == 0
    written = b""
    try:
        while chunk := os.read(controller, 4096):
            written += chunk
    except OSError:  # the terminal closes once the process and we let go of it
        pass
    finally:
        os.close(controller)
    return written.decode().splitlines()


def test_on_a_terminal_lines_are_readable_text(tmp_path: Path) -> None:
    (line,) = logged(terminal=True, tmp_path=tmp_path)
    assert line.endswith(" warning probe: delivered 42")
    assert not line.startswith("{")


def test_anywhere_else_lines_are_json(tmp_path: Path) -> None:
    (line,) = logged(terminal=False, tmp_path=tmp_path)
    entry = json.loads(line)
    assert (entry["level"], entry["component"], entry["msg"]) == (
        "warning",
        "probe",
        "delivered 42",
    )


@pytest.mark.parametrize(("terminal", "log_format"), [(True, "json"), (False, "text")])
def test_stackwire_log_format_decides_when_it_is_set(
    tmp_path: Path, terminal: bool, log_format: str
) -> None:
    (line,) = logged(terminal=terminal, tmp_path=tmp_path, STACKWIRE_LOG_FORMAT=log_format)
    assert line.startswith("{") == (log_format == "json")


def test_beats_line_for_every_task_it_sends_is_debug(tmp_path: Path) -> None:
    lines = logged(terminal=False, tmp_path=tmp_path, LOG_LEVEL="DEBUG")
    beat = [json.loads(line) for line in lines if "Sending due task" in line]
    assert [entry["level"] for entry in beat] == ["debug"]
