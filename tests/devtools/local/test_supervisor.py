"""Children of the supervisor die with it, however it dies, and take their own workers along."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.support.processes import still_running, wait_until_gone

# a child that, like gunicorn's master or a Celery worker, has a worker of its own and stops it
# when it is asked to stop
CHILD_WITH_A_WORKER = """
import signal, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
def stop(*_):
    worker.terminate()
    worker.wait()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
time.sleep(600)
"""
SUPERVISOR = f"""
import sys, time
from devtools.local.supervisor import Child, Supervisor
supervisor = Supervisor(print)
supervisor.add(Child("child", [sys.executable, "-c", {CHILD_WITH_A_WORKER!r}]))
print("started", flush=True)
time.sleep(600)
"""


@pytest.fixture
def supervisor() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "started"
    yield process
    process.kill()
    process.wait()
    process.stdout.close()


def descendants(process: subprocess.Popen[str], count: int) -> list[psutil.Process]:
    """Waits for `count` descendants (the child and its worker) and returns them."""
    found: list[psutil.Process] = []
    for _ in range(200):
        found = psutil.Process(process.pid).children(recursive=True)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"only {len(found)} of {count} descendants started")


def test_a_sigkilled_supervisor_leaves_no_child_and_no_grandchild(
    supervisor: subprocess.Popen[str],
) -> None:
    # Given a supervised child that has a worker of its own
    family = descendants(supervisor, 2)
    # When the supervisor is killed outright (no handler runs)
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait()
    # Then the kernel tells the child, whose own shutdown stops its worker
    try:
        wait_until_gone(family)
    finally:
        for process in family:  # never leave them behind for the next test
            if still_running([process]):
                process.kill()
