"""The running system for integration tests: the receiver and the sandbox served over real HTTP
from threads of the test process, and real Celery worker processes (one per lane, plus Beat when
asked) consuming real Redis queues. No eager mode anywhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, make_server

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import SandboxState
from pipeline.config.load import load_config
from pipeline.keys import LANES
from pipeline.runtime import Runtime
from pipeline.settings import Settings
from receivers.app import create_app
from tasks.celery_app import create_celery
from tests.support.fixtures import FIXTURES
from tests.support.servers import free_port

CONFIG = FIXTURES / "config"
ADMIN_TOKEN = "test-admin-token-0123456789"  # the stack's STACKWIRE_ADMIN_TOKEN


class ThreadedServer:
    """A real HTTP server on a loopback port, serving a WSGI app from a daemon thread."""

    def __init__(self, app: Any, port: int) -> None:
        self.port = port
        self.server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()


@dataclass
class Stack:
    settings: Settings
    sandbox_state: SandboxState
    sandbox: ThreadedServer
    receiver: ThreadedServer
    runtime: Runtime
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_dir: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        return dict(self.settings.env)

    def start_worker(
        self,
        lane: str,
        *,
        name: str | None = None,
        concurrency: int = 1,
        env: dict[str, str] | None = None,
        max_tasks_per_child: int | None = None,
    ) -> subprocess.Popen[bytes]:
        """`env` adds to the stack's environment: a config value read with ${VAR:-default}."""
        assert self.log_dir is not None
        name = name or lane
        log = (self.log_dir / f"worker-{name}.log").open("ab")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline.cli",
                "worker",
                "--lane",
                lane,
                "--concurrency",
                str(concurrency),
                "--name",
                name,
                *(
                    ["--max-tasks-per-child", str(max_tasks_per_child)]
                    if max_tasks_per_child
                    else []
                ),
            ],
            env={**os.environ, **self.env, **(env or {})},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.workers[name] = process
        return process

    def restart_worker(self, lane: str, env: dict[str, str] | None = None) -> None:
        """The lane's worker stopped and started again, with `env` (a config change)."""
        self.stop_worker(lane)
        self.start_worker(lane, env=env)
        self.wait_for_workers((lane,))

    def start_receiver_process(self, *, workers: int = 2, timeout: float = 60) -> str:
        """The receiver as `stackwire up` runs it: gunicorn with its worker processes, on a port of
        its own (the stack's in-thread receiver stays as it is); returns its URL once it answers."""
        assert self.log_dir is not None
        port = free_port()
        log = (self.log_dir / "receiver.log").open("ab")
        env = {**self.env, "STACKWIRE_PORT": str(port), "STACKWIRE_RECEIVER_WORKERS": str(workers)}
        self.workers["receiver"] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:receivers.gunicorn_conf",
                "receivers.app:create_app()",
            ],
            env={**os.environ, **env},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return url
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"the receiver never answered; logs in {self.log_dir}")

    def start_beat(self) -> subprocess.Popen[bytes]:
        assert self.log_dir is not None
        log = (self.log_dir / "beat.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "beat"],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.workers["beat"] = process
        return process

    def wait_for_workers(self, lanes: tuple[str, ...] = LANES, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while time.monotonic() < deadline and not set(lanes) <= seen:
            for reply in self.runtime.celery.control.ping(timeout=0.5) or []:
                seen.update(name.split("@", 1)[0].split("-", 1)[0] for name in reply)
        missing = set(lanes) - seen
        if missing:
            raise RuntimeError(
                f"workers for {sorted(missing)} never answered; logs in {self.log_dir}"
            )

    def stop_worker(self, name: str, *, kill: bool = False) -> None:
        """A warm shutdown (SIGTERM), or `kill`: SIGKILL to the worker and its pool children.

        A warm shutdown waits for the task in hand; one stuck on a slow call gets a cold
        shutdown (SIGQUIT), then SIGKILL, so a test's teardown never hangs on it.
        """
        process = self.workers.pop(name)
        if kill:
            stop_process_group(process, signal.SIGKILL)
            process.wait(timeout=30)
            return
        for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 30.0)):
            stop_process_group(process, sig)
            try:
                process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop(self) -> None:
        for name in list(self.workers):
            self.stop_worker(name)
        self.receiver.stop()
        self.sandbox.stop()
        self.runtime.close()

    def post_webhook(
        self, source: str, body: bytes, headers: dict[str, str], *, key: str | None = None
    ) -> requests.Response:
        """`key`: the URL secret of a source that takes one (`?key=`)."""
        return requests.post(
            f"{self.receiver.url}/webhooks/{source}",
            params={"key": key} if key else None,
            data=body,
            headers=headers,
            timeout=10,
        )


def stop_process_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """`sig` to the worker's own session (it was started with start_new_session)."""
    try:
        if sig == signal.SIGKILL:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    except ProcessLookupError:
        pass


def build_stack(
    database_url: str,
    redis_url: str,
    log_dir: Path,
    *,
    broker_url: str | None = None,
    env: dict[str, str] | None = None,
) -> Stack:
    """`env` adds to (or overrides) the stack's environment, its workers' included."""
    sandbox_state = SandboxState(seed=7)
    sandbox = ThreadedServer(create_sandbox_app(sandbox_state), free_port())
    receiver_port = free_port()
    given = env or {}
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "STACKWIRE_CONFIG": str(CONFIG),
        "SANDBOX_PORT": str(sandbox.port),
        "STACKWIRE_PORT": str(receiver_port),
        "STACKWIRE_DATA_DIR": str(log_dir),
        "STACKWIRE_LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
        "STACKWIRE_TASK_EVENTS": "0",
        "STACKWIRE_SWEEP_SECONDS": "1",
        "STACKWIRE_ADMIN_TOKEN": ADMIN_TOKEN,
        **({"BROKER_URL": broker_url} if broker_url else {}),
        **given,
    }
    settings = Settings.from_env(env)
    config = load_config(settings.config_path, settings.env)
    receiver = ThreadedServer(
        create_app(settings, config=config, configure_logs=False), receiver_port
    )
    runtime = Runtime.build(settings, create_celery(settings, task_events=False), config=config)
    return Stack(settings, sandbox_state, sandbox, receiver, runtime, log_dir=log_dir)


def serve_sandbox(seed: int) -> Iterator[tuple[ThreadedServer, SandboxState]]:
    """A sandbox on a loopback port for one test module: `yield from serve_sandbox(seed)`."""
    state = SandboxState(seed=seed)
    server = ThreadedServer(create_sandbox_app(state), free_port())
    try:
        yield server, state
    finally:
        server.stop()
