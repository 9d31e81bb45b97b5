"""Beat, the sweeper and the prober record each run, and `stackwire status` shows the system:
real Beat and worker processes, `stackwire status` run as an operator would."""

from __future__ import annotations

import json
import os
import time

from pipeline.flow import liveness
from pipeline.keys import BEAT_JOB, JOBS, LANES, MAINTENANCE
from tests.support.commands import stackwire
from tests.support.servers import free_port
from tests.support.stack import Stack
from tests.support.waiting import wait_until


def test_beat_the_sweeper_and_the_prober_record_each_run(live: Stack) -> None:
    # the live fixture emptied Redis: every record below was written since
    started = time.time()
    runs = every_job_ran(live)
    assert all((runs[job] or 0) >= started - 1 for job in JOBS), runs


def test_beat_keeps_its_line_for_every_task_it_sends_at_debug(live: Stack) -> None:
    wait_until(lambda: liveness.last_runs(live.runtime.redis)[BEAT_JOB], bool, timeout=30)
    assert live.log_dir is not None
    beat_log = (live.log_dir / "beat.log").read_text()
    assert "beat: Starting" in beat_log
    assert "Sending due task" not in beat_log


def test_status_shows_every_server_lane_job_and_dead_letter(live: Stack) -> None:
    every_job_ran(live)
    result = stackwire("status", "--json", env=live_env(live))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    servers = {server["name"]: server for server in report["servers"]}
    assert {name: server["reachable"] for name, server in servers.items()} == {
        "PostgreSQL": True,
        "Redis": True,
        "receiver": True,
    }
    lanes = {lane["name"]: lane for lane in report["lanes"]}
    assert set(lanes) == {*LANES, MAINTENANCE}
    assert all(lanes[lane]["workers"] >= 1 and lanes[lane]["queued"] >= 0 for lane in LANES)
    assert [job["name"] for job in report["jobs"]] == list(JOBS)
    assert not [job for job in report["jobs"] if job["overdue"] or job["last_run"] is None]
    assert report["dead_letters"] == {}
    assert report["problems"] == []


def test_the_status_table_reads_as_text(live: Stack) -> None:
    result = stackwire("status", env=live_env(live))
    for heading in ("Servers", "Lanes", "Periodic jobs", "Open dead letters: none"):
        assert heading in result.stdout, result.stdout


def test_status_reports_a_server_that_is_down_and_exits_1(live: Stack) -> None:
    env = {**live_env(live), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = stackwire("status", "--json", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    redis_server = next(server for server in report["servers"] if server["name"] == "Redis")
    assert redis_server["reachable"] is False
    assert report["jobs"] is None
    assert [lane["queued"] for lane in report["lanes"]] == [None] * 4


def every_job_ran(live: Stack) -> dict[str, float | None]:
    return wait_until(
        lambda: liveness.last_runs(live.runtime.redis),
        lambda found: all(found[job] is not None for job in JOBS),
        timeout=30,
    )


def live_env(live: Stack) -> dict[str, str]:
    """The stack's environment over ours: what an operator on that machine would have."""
    return {**os.environ, **live.env}
