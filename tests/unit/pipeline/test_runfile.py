"""The run file `stackwire up` leaves for other commands: live while its process runs, else stale."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.local.up import update_run_file
from pipeline import runfile
from pipeline.runfile import RunRecord


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process standing in for a running `stackwire up`."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process
    process.kill()
    process.wait()


def record_of(process: subprocess.Popen[bytes], redis_url: str) -> RunRecord:
    started = runfile.process_start(process.pid)
    return RunRecord(pid=process.pid, started=started, redis_url=redis_url)


def test_a_run_file_reads_back_as_written(tmp_path: Path) -> None:
    written = RunRecord.for_this_process(
        database_url="postgresql://postgres@127.0.0.1:15432/stackwire",
        redis_url="redis://127.0.0.1:16379/0",
        config_path="/etc/stackwire.toml",
        ports={"receiver": 8000, "postgres": 15432},
        servers={"postgres": 4242},
    )
    update_run_file(tmp_path, written)
    assert runfile.read(tmp_path) == written
    assert runfile.read_live(tmp_path) == written  # this test's process is alive


def test_the_run_file_of_a_process_that_is_gone_is_stale(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    update_run_file(tmp_path, record_of(sleeper, redis_url="redis://127.0.0.1:1/0"))
    assert runfile.read_live(tmp_path) is not None
    sleeper.kill()
    sleeper.wait()
    assert runfile.read_live(tmp_path) is None
    assert runfile.read(tmp_path) is not None  # still there, for `stackwire up` to replace


def test_a_pid_now_used_by_another_program_is_not_the_run(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    started = runfile.process_start(sleeper.pid)
    assert started is not None
    update_run_file(tmp_path, RunRecord(pid=sleeper.pid, started=started - 1))
    assert runfile.read_live(tmp_path) is None


def test_a_dead_process_not_yet_reaped_is_not_running(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # exited, left a zombie
    try:
        assert not runfile.is_running(process.pid, runfile.process_start(process.pid))
    finally:
        process.wait()


@pytest.mark.parametrize("text", ["", "{", "[]", '{"state": "ready"}', '{"pid": "x"}'])
def test_anything_else_is_no_run_file(tmp_path: Path, text: str) -> None:
    runfile.path_in(tmp_path).write_text(text)
    assert runfile.read(tmp_path) is None
    assert runfile.read_live(tmp_path) is None
