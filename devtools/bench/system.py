"""The whole system as real processes, for the benchmark and the fault-injection suite.

Its own PostgreSQL and Redis (embedded, on free loopback ports, so they can be restarted without
touching anything else on the machine), the sandbox and the receiver under gunicorn, one Celery
worker per lane with N pool processes, and one or more Beat processes, all supervised: a killed
process is restarted, as `stackwire up` does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
import requests
from sqlalchemy import Engine

from devtools.local.embedded import EmbeddedPostgres, EmbeddedRedis
from devtools.local.supervisor import Child, Supervisor
from pipeline.keys import LANES
from pipeline.log.db import create_db_engine, migrate
from pipeline.settings import Settings
from tasks.celery_app import create_celery

BENCH_CONFIG = Path(__file__).with_name("bench.toml")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SystemUnderTest:
    root: Path
    config: Path = BENCH_CONFIG
    pool: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LANES, 1))
    beats: int = 1
    receiver_workers: int = 2
    receiver_worker_class: str = "gthread"
    receiver_threads: int = 8
    sweep_seconds: float = 1.0
    extra_env: dict[str, str] = field(default_factory=dict)
    postgres: EmbeddedPostgres | None = None
    redis_server: EmbeddedRedis | None = None
    supervisor: Supervisor | None = None
    ports: dict[str, int] = field(default_factory=dict)
    _watcher: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> SystemUnderTest:
        self.root.mkdir(parents=True, exist_ok=True)
        self.ports = {
            name: free_port() for name in ("pg", "redis", "receiver", "sandbox", "flower")
        }
        self.postgres = EmbeddedPostgres(self.root / "postgres", self.ports["pg"])
        self.redis_server = EmbeddedRedis(self.root / "redis", self.ports["redis"])
        self.postgres.start(self.root / "postgres.log")
        self.redis_server.start(self.root / "redis.log")
        migrate(self.settings)
        self.supervisor = Supervisor(lambda message: self.log(f"supervisor: {message}"))
        for child in self.children():
            self.supervisor.add(child)
        self._watcher = threading.Thread(target=self.supervisor.watch, daemon=True)
        self._watcher.start()
        self.wait_ready()
        return self

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stopping = True
            self.supervisor.stop_all()
        for server in (self.redis_server, self.postgres):
            if server is not None:
                server.stop()
        if not os.environ.get("STACKWIRE_KEEP_BENCH_DATA"):
            # the servers' data (hundreds of MB a run) goes; the logs stay for a post-mortem
            for data in ("postgres", "redis"):
                shutil.rmtree(self.root / data, ignore_errors=True)

    def log(self, message: str) -> None:
        with (self.root / "harness.log").open("a") as out:
            out.write(f"{time.strftime('%H:%M:%S')} {message}\n")

    # -- what the processes are --------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.postgres.url if self.postgres else "",
            "REDIS_URL": self.redis_server.url if self.redis_server else "",
            "STACKWIRE_CONFIG": str(self.config),
            "STACKWIRE_DATA_DIR": str(self.root),
            "STACKWIRE_PORT": str(self.ports["receiver"]),
            "SANDBOX_PORT": str(self.ports["sandbox"]),
            "FLOWER_PORT": str(self.ports["flower"]),
            "STACKWIRE_RECEIVER_WORKERS": str(self.receiver_workers),
            "STACKWIRE_RECEIVER_WORKER_CLASS": self.receiver_worker_class,
            "STACKWIRE_RECEIVER_THREADS": str(self.receiver_threads),
            "STACKWIRE_TASK_EVENTS": "0",
            "STACKWIRE_SWEEP_SECONDS": str(self.sweep_seconds),
            "STACKWIRE_LOG_FORMAT": "text",
            "LOG_LEVEL": "WARNING",
            **self.extra_env,
        }

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def children(self) -> list[Child]:
        py, env = sys.executable, self.env
        found = [
            Child(
                "sandbox",
                [
                    py,
                    "-m",
                    "gunicorn",
                    "-c",
                    "python:devtools.sandbox.gunicorn_conf",
                    "devtools.sandbox.app:create_sandbox_app()",
                ],
                env,
            ),
            Child(
                "receiver",
                [
                    py,
                    "-m",
                    "gunicorn",
                    "-c",
                    "python:receivers.gunicorn_conf",
                    "receivers.app:create_app()",
                ],
                env,
            ),
        ]
        for lane in LANES:
            found.append(self.worker(lane))
        for number in range(self.beats):
            schedule = self.root / f"celerybeat-{number}"
            found.append(
                Child(
                    f"beat-{number}",
                    [py, "-m", "pipeline.cli", "beat"],
                    {**env, "STACKWIRE_DATA_DIR": str(schedule)},
                )
            )
        return found

    def worker(self, lane: str) -> Child:
        argv = [
            sys.executable,
            "-m",
            "pipeline.cli",
            "worker",
            "--lane",
            lane,
            "--concurrency",
            str(self.pool[lane]),
        ]
        return Child(f"worker-{lane}", argv, self.env)

    def child(self, name: str) -> Child:
        assert self.supervisor is not None
        return next(c for c in self.supervisor.children if c.name == name)

    def processes(self) -> dict[str, list[psutil.Process]]:
        """Every process of the system by component, servers included, for CPU and memory."""
        found: dict[str, list[psutil.Process]] = {}
        assert self.supervisor is not None
        for child in self.supervisor.children:
            if child.alive and child.process is not None:
                parent = psutil.Process(child.process.pid)
                found[child.name] = [parent, *parent.children(recursive=True)]
        for name, server in (("postgres", self.postgres), ("redis", self.redis_server)):
            if server is not None and server.process is not None:
                parent = psutil.Process(server.process.pid)
                found[name] = [parent, *parent.children(recursive=True)]
        return found

    # -- readiness ----------------------------------------------------------------------------

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['receiver']}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sandbox']}"

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        celery = create_celery(self.settings, task_events=False)
        while time.monotonic() < deadline:
            if self._answers(f"{self.receiver_url}/readyz") and self._answers(
                f"{self.sandbox_url}/_sandbox/healthz"
            ):
                replies = celery.control.ping(timeout=1.0) or []
                lanes = {name.split("@", 1)[0] for reply in replies for name in reply}
                if set(LANES) <= lanes:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"the system was not ready within {timeout:.0f} s; see {self.root}")

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # -- clients ------------------------------------------------------------------------------

    def engine(self) -> Engine:
        return create_db_engine(self.settings, pool_size=2)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.require_redis_url())

    # -- faults -------------------------------------------------------------------------------

    def hold(self, name: str) -> None:
        """Stops a child and keeps it stopped (a benchmark measuring something else)."""
        child = self.child(name)
        child.restart = False
        if child.alive and child.process is not None:
            child.process.terminate()
            child.process.wait(timeout=30)

    def release(self, name: str) -> None:
        child = self.child(name)
        child.restart = True
        child.next_start = 0.0
        if not child.alive:
            child.start()

    def add(self, child: Child) -> Child:
        assert self.supervisor is not None
        return self.supervisor.add(child)

    def kill_pool(self, lane: str, how: int = signal.SIGKILL) -> int:
        """Kills the pool processes of a lane's worker (the ones running tasks)."""
        worker = self.child(f"worker-{lane}")
        if worker.process is None:
            return 0
        try:
            pool = psutil.Process(worker.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return 0  # the worker itself is gone; the supervisor is starting a new one
        killed = 0
        for process in pool:
            try:
                process.send_signal(how)
                killed += 1
            except psutil.NoSuchProcess:
                pass  # a pool process that died (or was replaced) meanwhile
        return killed

    def kill_worker(self, lane: str) -> None:
        """SIGKILLs a lane's whole worker, parent and pool; the supervisor starts a new one."""
        worker = self.child(f"worker-{lane}")
        assert worker.process is not None
        parent = psutil.Process(worker.process.pid)
        for process in [*parent.children(recursive=True), parent]:
            with contextlib.suppress(psutil.NoSuchProcess):  # a pool process that died meanwhile
                process.send_signal(signal.SIGKILL)

    def restart_redis(self, down_for: float = 2.0) -> None:
        assert self.redis_server is not None
        self.redis_server.stop()
        time.sleep(down_for)
        self.redis_server.start(self.root / "redis.log")

    def restart_postgres(self, down_for: float = 2.0) -> None:
        assert self.postgres is not None
        self.postgres.stop()
        time.sleep(down_for)
        self.postgres.start(self.root / "postgres.log")

    def fault(self, provider: str, **spec: object) -> None:
        answer = requests.put(
            f"{self.sandbox_url}/_sandbox/faults/{provider}", json=spec, timeout=10
        )
        answer.raise_for_status()

    def clear_fault(self, provider: str) -> None:
        requests.delete(f"{self.sandbox_url}/_sandbox/faults/{provider}", timeout=10)


def data_root(name: str) -> Path:
    base = Path(os.environ.get("STACKWIRE_BENCH_DIR") or tempfile.gettempdir()) / "stackwire-bench"
    return base / f"{name}-{os.getpid()}-{int(time.time())}"


CHAOS_CONFIG = Path(__file__).with_name("chaos.toml")


def chaos_config(directory: Path, extra: str = "") -> Path:
    """A config directory: bench.toml, chaos.toml and, if given, a scenario's own part (merged
    in name order by `pipeline.config.load`)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(BENCH_CONFIG, directory / "00-bench.toml")
    shutil.copy(CHAOS_CONFIG, directory / "10-chaos.toml")
    if extra:
        (directory / "20-scenario.toml").write_text(extra)
    return directory
