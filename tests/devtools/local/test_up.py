"""`stackwire up` as a new user meets it: commands in a second terminal find its servers, a second
`stackwire up` is refused, and killing it outright leaves nothing running."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.local.up import claim_run_file, release_run_file, update_run_file
from pipeline import runfile
from pipeline.runfile import READY, RunRecord
from tests.support.commands import ROOT, STACKWIRE, bare_env, stackwire
from tests.support.processes import still_running, tree, wait_until_gone
from tests.support.servers import free_port

READY_TIMEOUT = 240.0


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    output: Path

    def said(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while "stackwire | ready" not in self.said():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"stackwire up never said ready:\n{self.said()[-4000:]}")
            time.sleep(0.5)


@dataclass
class Checkout:
    """A data directory and ports of its own, as a second checkout on the machine would have."""

    data: Path
    env: dict[str, str]
    started: list[Up]

    def up(self) -> Up:
        output = self.data.parent / f"up-{len(self.started)}.out"
        with output.open("wb") as out:
            process = subprocess.Popen(
                [str(STACKWIRE), "up"], env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )
        self.started.append(Up(process, output))
        return self.started[-1]


@pytest.fixture
def checkout() -> Iterator[Checkout]:
    root = Path(tempfile.mkdtemp(prefix="stackwire-up-test-"))
    ports = {
        name: str(free_port())
        for name in (
            "STACKWIRE_PORT",
            "SANDBOX_PORT",
            "FLOWER_PORT",
            "STACKWIRE_PG_PORT",
            "STACKWIRE_REDIS_PORT",
        )
    }
    found = Checkout(root / "var", bare_env(root / "var", **ports), [])
    yield found
    for up in found.started:  # whatever a failed test left running
        if up.process.poll() is None:
            family = tree(up.process.pid)
            for process in family:
                if still_running([process]):
                    process.kill()
            up.process.wait()
    shutil.rmtree(root, ignore_errors=True)


def test_the_first_stackwire_up_claims_the_data_directory(tmp_path: Path) -> None:
    mine = RunRecord.for_this_process(state=READY)
    assert claim_run_file(tmp_path, mine) is None
    assert runfile.read(tmp_path) == mine
    assert runfile.path_in(tmp_path).stat().st_mode & 0o777 == 0o600  # URLs may hold passwords
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary file left
    # a second one, while the first runs, is handed the first one's record
    assert claim_run_file(tmp_path, RunRecord(pid=1, started=None)) == mine


def test_a_stale_run_file_is_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    update_run_file(tmp_path, RunRecord(pid=gone.pid, started=None))
    mine = RunRecord.for_this_process()
    assert claim_run_file(tmp_path, mine) is None
    assert runfile.read(tmp_path) == mine
    assert (
        f"removing a stale run file (pid {gone.pid}, no longer running)" in capsys.readouterr().out
    )


def test_a_stop_removes_only_its_own_run_file(tmp_path: Path) -> None:
    mine = RunRecord.for_this_process()
    update_run_file(tmp_path, RunRecord(pid=1, started=None))  # another run's, say
    release_run_file(tmp_path, mine)
    assert runfile.path_in(tmp_path).exists()
    update_run_file(tmp_path, mine)
    release_run_file(tmp_path, mine)
    assert not runfile.path_in(tmp_path).exists()


@pytest.mark.slow
def test_stackwire_up_from_start_to_a_kill(checkout: Checkout) -> None:
    # Given `stackwire up` on embedded servers, ready
    first = checkout.up()
    first.wait_until_ready()
    run = runfile.read_live(checkout.data)
    assert run is not None and run.pid == first.process.pid and run.state == READY
    assert set(run.servers) == {"postgres", "redis"}

    # When an operator runs commands in a second terminal, with no DATABASE_URL or REDIS_URL
    env = bare_env(checkout.data)
    listed = stackwire("dlq", "ls", "--json", env=env)
    destinations = stackwire("destinations", "ls", "--json", env=env)
    status = stackwire("status", "--json", env=env)
    # Then they reach the embedded servers
    assert (listed.returncode, listed.stderr) == (0, ""), listed.stderr
    assert destinations.returncode == 0, destinations.stderr
    named = {found["name"] for found in json.loads(destinations.stdout)["data"]}
    assert named >= {"courses"}
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert (report["run"]["pid"], report["problems"]) == (first.process.pid, [])

    # When a second `stackwire up` starts on the same data directory
    second = stackwire("up", env=checkout.env)
    # Then it says the first is running, and which, and starts nothing
    assert second.returncode == 1
    assert f"already running on {checkout.data} (pid {first.process.pid})" in second.stdout

    # When the first is killed outright (a closed terminal, the OOM killer)
    family = tree(first.process.pid)
    assert len(family) > 10  # servers, receiver, sandbox, workers and their pools, Beat, Flower
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    # Then no process of that run is left
    wait_until_gone(family)
    # and the commands no longer find a run: its file is stale
    nothing = stackwire("dlq", "ls", env=env)
    assert nothing.returncode == 1 and "no `stackwire up` is running here" in nothing.stderr

    # When it is started again on the same data directory
    again = checkout.up()
    again.wait_until_ready()
    # Then it replaced the stale run file and uses the data kept
    assert f"removing a stale run file (pid {first.process.pid}" in again.said()

    # When it is stopped with Ctrl-C
    family = tree(again.process.pid)
    again.process.send_signal(signal.SIGINT)
    # Then it stops everything and removes its run file
    assert again.process.wait(timeout=120) == 0
    assert "stackwire | stopped" in again.said()
    assert not runfile.path_in(checkout.data).exists()
    wait_until_gone(family, timeout=10)
