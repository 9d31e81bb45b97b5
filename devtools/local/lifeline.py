"""Children that die with their parent: Linux's parent-death signal, set between fork and exec.

A `stackwire up` killed with SIGKILL (a closed terminal, the OOM killer) runs no cleanup, so its
children would keep running and hold their ports. Each child it starts asks the kernel for a
signal when its parent goes (`prctl(PR_SET_PDEATHSIG)`): the supervisor's children get SIGTERM and
shut their own workers down as they always do (gunicorn's master its workers, Celery's its pool),
PostgreSQL gets SIGINT, its fast shutdown. The signal follows the *thread* that started the child:
start children from a thread that lives as long as they should.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen`; None where the kernel has no parent-death signal."""
    if not sys.platform.startswith("linux"):
        return None
    # looked up here, in the parent: between fork and exec the child only makes two calls
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        if prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the signal was armed: never start
            os._exit(1)

    return arm
