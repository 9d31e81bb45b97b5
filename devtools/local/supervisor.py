"""A small process supervisor for `stackwire up`: start children, restart the ones that die,
stop them all in reverse order on Ctrl-C or SIGTERM.

Children run in their own sessions so a Ctrl-C reaches only us; we then SIGTERM each child
(gunicorn and Celery both shut down gracefully on it) and SIGKILL what is left after a grace.
Should we be killed outright, each child gets SIGTERM from the kernel all the same
(`devtools.local.lifeline`), and its own shutdown takes its workers with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devtools.local.lifeline import die_with_parent

GRACE_SECONDS = 20.0
MAX_RESTART_DELAY = 30.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509 - see lifeline
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.children: list[Child] = []
        self.say = say
        self.stopping = False

    def add(self, child: Child) -> Child:
        self.children.append(child)
        child.start()
        return child

    def install_signal_handlers(self) -> None:
        def request_stop(signum: int, _frame: object) -> None:
            if not self.stopping:
                self.say(f"received {signal.Signals(signum).name}: stopping every process")
            self.stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        # a closed terminal: stop as cleanly as on Ctrl-C (children have their own sessions)
        signal.signal(signal.SIGHUP, request_stop)

    def watch(self) -> None:
        """Restarts children that died (with backoff) until asked to stop."""
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                if child.alive or not child.restart:
                    continue
                if child.next_start == 0.0:
                    code = child.process.returncode if child.process else None
                    delay = min(2.0**child.restarts, MAX_RESTART_DELAY)
                    child.next_start = now + delay
                    self.say(f"{child.name} exited (code {code}); restarting in {delay:.0f} s")
                elif now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    child.start()
            time.sleep(0.2)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            if child.alive and child.process is not None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in time; killing it")
                child.process.kill()
                child.process.wait()
