"""Which processes of a run are still there: zombies count as gone (they have exited, and only
wait for a parent to collect them)."""

from __future__ import annotations

from collections.abc import Iterable

import psutil

from tests.support.waiting import wait_until


def tree(pid: int) -> list[psutil.Process]:
    """The process and every descendant it has now."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def still_running(processes: Iterable[psutil.Process]) -> list[str]:
    left = []
    for process in processes:
        try:
            # is_running compares the start time too: a reused pid is not the same process
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return left


def wait_until_gone(processes: Iterable[psutil.Process], *, timeout: float = 30) -> None:
    watched = list(processes)
    wait_until(lambda: still_running(watched), lambda left: not left, timeout=timeout)
