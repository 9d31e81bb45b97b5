"""The operator's commands beside `make run`: they find its servers through the run file, and with
nothing to talk to they say so in one sentence, never with a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.local.up import update_run_file
from pipeline.runfile import READY, RunRecord
from tests.support.commands import bare_env, stackwire
from tests.support.stack import CONFIG

NEEDS_SERVERS = [
    ("dlq", "ls"),
    ("dlq", "replay", "1"),
    ("dlq", "show", "1"),
    ("events", "search", "--email", "a@example.com"),
    ("trace", "evt_1"),
    ("replay", "plan"),
    ("replay", "status", "rp_0"),
    ("audit",),
    ("destinations", "ls"),
    ("destinations", "pause", "courses"),
    ("migrate",),
    ("status",),
    ("worker", "--lane", "payments"),
    ("beat",),
    ("flower",),
    ("receiver",),
]


def assert_one_sentence(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0]


@pytest.mark.parametrize("command", NEEDS_SERVERS, ids=" ".join)
def test_with_nothing_running_a_command_says_so_in_one_sentence(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    result = stackwire(*command, env=bare_env(tmp_path))
    assert_one_sentence(result, "is not set and no `stackwire up` is running here", "make run")


def test_a_run_file_left_by_a_killed_stackwire_up_is_ignored(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    update_run_file(
        tmp_path,
        RunRecord(pid=gone.pid, started=None, database_url="postgresql://x@127.0.0.1:1/x"),
    )
    result = stackwire("dlq", "ls", env=bare_env(tmp_path))
    assert_one_sentence(result, "DATABASE_URL is not set")


def test_a_server_that_does_not_answer_is_named_in_one_sentence(tmp_path: Path) -> None:
    env = bare_env(
        tmp_path,
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/none",
        REDIS_URL="redis://127.0.0.1:1/0",
        STACKWIRE_CONFIG=str(CONFIG),
        SANDBOX_PORT="18100",
    )
    result = stackwire("dlq", "ls", env=env)
    assert_one_sentence(result, "PostgreSQL does not answer")


def test_beside_a_running_stackwire_up_the_commands_find_its_servers(
    tmp_path: Path, database_url: str, redis_url: str, clean: None
) -> None:
    # Given the run file of a live `stackwire up` (this test's own process stands in for it)
    update_run_file(
        tmp_path,
        RunRecord.for_this_process(
            state=READY,
            config_path=str(CONFIG),
            database_url=database_url,
            redis_url=redis_url,
            ports={"receiver": 18000, "sandbox": 18100},  # the config names ${SANDBOX_PORT}
        ),
    )
    env = bare_env(tmp_path)  # no DATABASE_URL, no REDIS_URL, no STACKWIRE_CONFIG
    # When an operator runs the commands in another terminal
    listed = stackwire("dlq", "ls", "--json", env=env)
    status = stackwire("destinations", "ls", "--json", env=env)
    # Then they reach its PostgreSQL and Redis, with its config
    assert (listed.returncode, listed.stderr) == (0, ""), listed.stderr
    assert json.loads(listed.stdout) == {"data": [], "next_cursor": None}
    assert status.returncode == 0, status.stderr
    names = [found["name"] for found in json.loads(status.stdout)["data"]]
    assert "courses" in names, status.stdout
