"""`stackwire up`: the whole system in the foreground, on embedded servers unless URLs are given.

Order: the run file (one `stackwire up` per data directory), servers (embedded PostgreSQL and
Redis when DATABASE_URL/REDIS_URL are unset), migrations, then the sandbox, the receiver, one
worker per lane, Beat and Flower. It prints every URL, then "ready" once the receiver's /readyz
answers 200 and a worker of every lane has answered a ping.

The run file (`<data dir>/run.json`, `pipeline.runfile`) says what runs where, so that commands in
another terminal find the embedded servers; it is replaced atomically and removed on a clean stop.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from devtools.local.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    PortTaken,
    ServerFailed,
    port_is_free,
)
from devtools.local.supervisor import Child, Supervisor
from pipeline import runfile
from pipeline.config.model import Config
from pipeline.keys import LANES
from pipeline.log.db import migrate
from pipeline.metrics import multiproc
from pipeline.runfile import READY, RunRecord
from pipeline.settings import Settings
from tasks.celery_app import create_celery

READY_TIMEOUT = 120.0
# how far above a taken default port an embedded server looks for a free one
PORT_SEARCH = 50

Server = EmbeddedPostgres | EmbeddedRedis


def say(message: str) -> None:
    # the terminal may be gone (SIGHUP): stopping goes on without it
    with contextlib.suppress(OSError):
        print(f"stackwire | {message}", flush=True)


# -- the run file ---------------------------------------------------------------------------------


def claim_run_file(data_dir: Path, record: RunRecord) -> RunRecord | None:
    """Writes our run file unless a live `stackwire up` has one here; returns that one's record.

    Linking a finished file into place fails when one exists, so of two `stackwire up` starting
    at once exactly one wins."""
    for _ in range(3):
        try:
            _write_run_file(data_dir, record, exclusive=True)
            return None
        except FileExistsError:
            found = runfile.read(data_dir)
            if found is not None and found.alive:
                return found
            stale = f"pid {found.pid}" if found else "unreadable"
            say(f"removing a stale run file ({stale}, no longer running)")
            runfile.path_in(data_dir).unlink(missing_ok=True)
    raise RuntimeError(f"could not claim {runfile.path_in(data_dir)}")


def update_run_file(data_dir: Path, record: RunRecord) -> None:
    _write_run_file(data_dir, record, exclusive=False)


def release_run_file(data_dir: Path, record: RunRecord) -> None:
    found = runfile.read(data_dir)
    if found is not None and (found.pid, found.started) == (record.pid, record.started):
        runfile.path_in(data_dir).unlink(missing_ok=True)


def _write_run_file(data_dir: Path, record: RunRecord, *, exclusive: bool) -> None:
    """Readers see the old file or the new one, never half of one (rename and link are atomic)."""
    final = runfile.path_in(data_dir)
    temporary = final.with_name(f".{final.name}.{record.pid}.tmp")
    # it may name servers with their passwords: for this user only
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            out.write(record.to_json())
            out.flush()
            os.fsync(out.fileno())
        if exclusive:
            os.link(temporary, final)
        else:
            os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


def first_record(settings: Settings, *, sandbox: bool) -> RunRecord:
    ports = {"receiver": settings.port, "flower": settings.flower_port}
    if sandbox:
        ports["sandbox"] = settings.sandbox_port
    return RunRecord.for_this_process(
        data_dir=str(settings.data_dir.resolve()),
        config_path=str(settings.config_path.resolve()),
        ports=ports,
    )


def servers_record(record: RunRecord, settings: Settings, servers: list[Server]) -> RunRecord:
    ports = dict(record.ports)
    started: dict[str, int] = {}
    for server in servers:
        name = "postgres" if isinstance(server, EmbeddedPostgres) else "redis"
        ports[name] = server.port
        if server.process is not None:
            started[name] = server.process.pid
    return record.updated(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        broker_url=settings.broker_url,
        ports=ports,
        servers=started,
    )


# -- ports ----------------------------------------------------------------------------------------


def taken_ports(settings: Settings, *, sandbox: bool) -> list[str]:
    """Sentences for the ports of our own children another program already listens on."""
    wanted = [("the receiver", "STACKWIRE_PORT", settings.port)]
    wanted.append(("Flower", "FLOWER_PORT", settings.flower_port))
    if sandbox:
        wanted.append(("the sandbox", "SANDBOX_PORT", settings.sandbox_port))
    return [
        f"port {port} ({what}) is in use by another program: stop it or set {variable}"
        for what, variable, port in wanted
        if not port_is_free(port)
    ]


def embedded_port(preferred: int, what: str, variable: str) -> int:
    """The preferred port, or the next free one above it: the run file tells commands which."""
    for port in range(preferred, min(preferred + PORT_SEARCH, 65536)):
        if port_is_free(port):
            if port != preferred:
                say(
                    f"port {preferred} ({variable}) is in use by another program; {what} uses {port}"
                )
            return port
    raise PortTaken(
        f"ports {preferred}-{preferred + PORT_SEARCH - 1} for {what} are all in use; "
        f"set {variable} to a free port"
    )


def start_servers(settings: Settings, servers: list[Server]) -> Settings:
    """Starts an embedded server for each URL not given, appending it to `servers` as it runs
    (so a failure of the second still stops the first)."""
    data = settings.data_dir.resolve()
    (data / "logs").mkdir(parents=True, exist_ok=True)
    database_url, redis_url = settings.database_url, settings.redis_url
    if not database_url:
        port = embedded_port(settings.embedded_pg_port, "PostgreSQL", "STACKWIRE_PG_PORT")
        postgres = EmbeddedPostgres(data / "postgres", port)
        say(f"starting embedded PostgreSQL on 127.0.0.1:{port} (data in {postgres.data_dir})")
        servers.append(postgres)
        database_url = postgres.start(data / "logs" / "postgres.log")
    if not redis_url:
        port = embedded_port(settings.embedded_redis_port, "Redis", "STACKWIRE_REDIS_PORT")
        redis_server = EmbeddedRedis(data / "redis", port)
        say(f"starting embedded Redis on 127.0.0.1:{port} (append-only file on)")
        servers.append(redis_server)
        redis_url = redis_server.start(data / "logs" / "redis.log")
    return settings.with_servers(database_url, redis_url)


ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name


def local_admin_token(data: Path) -> str:
    """A token made once per data directory (owner-readable), so the admin API works beside
    `make run` with `Authorization: Bearer $(cat var/admin.token)`."""
    path = data.resolve() / ADMIN_TOKEN_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def child_env(settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.require_database_url(),
        "REDIS_URL": settings.require_redis_url(),
        "STACKWIRE_CONFIG": str(settings.config_path.resolve()),
        "STACKWIRE_DATA_DIR": str(settings.data_dir.resolve()),
        # every child also writes its JSON lines here: `stackwire trace` reads them back
        "STACKWIRE_LOG_DIR": str((settings.data_dir / "logs").resolve()),
        # the admin API's token: the operator's own, or one made for this data directory
        "STACKWIRE_ADMIN_TOKEN": settings.admin_token or local_admin_token(settings.data_dir),
        "STACKWIRE_PORT": str(settings.port),
        "SANDBOX_PORT": str(settings.sandbox_port),
        "FLOWER_PORT": str(settings.flower_port),
        # every process of the run counts into one directory: the receiver's /metrics merges them
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(settings)),
        **({"BROKER_URL": settings.broker_url} if settings.broker_url else {}),
    }


def metrics_dir(settings: Settings) -> Path:
    """Prometheus multiprocess files of this run (PROMETHEUS_MULTIPROC_DIR when the environment
    names one, else under the data directory)."""
    return (settings.metrics_dir or settings.data_dir / "metrics").resolve()


def children(settings: Settings, config: Config, *, sandbox: bool = True) -> list[Child]:
    env = child_env(settings)
    py = sys.executable
    found: list[Child] = []
    if sandbox:
        found.append(
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
            )
        )
    found.append(
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
        )
    )
    for lane in LANES:
        concurrency = str(config.lanes[lane].concurrency)
        found.append(
            Child(
                f"worker-{lane}",
                [py, "-m", "pipeline.cli", "worker", "--lane", lane, "--concurrency", concurrency],
                env,
            )
        )
    found.append(Child("beat", [py, "-m", "pipeline.cli", "beat"], env))
    found.append(Child("flower", [py, "-m", "pipeline.cli", "flower"], env))
    return found


def wait_until_ready(
    settings: Settings, *, sandbox: bool = True, stopping: Callable[[], bool] = lambda: False
) -> bool:
    celery = create_celery(settings, task_events=False)
    deadline = time.monotonic() + READY_TIMEOUT
    base = f"http://{settings.host}:{settings.port}"
    checks = {"receiver": False, "sandbox": not sandbox, **{lane: False for lane in LANES}}
    while time.monotonic() < deadline and not all(checks.values()) and not stopping():
        checks["receiver"] = checks["receiver"] or _answers(f"{base}/readyz")
        if not checks["sandbox"]:
            checks["sandbox"] = _answers(
                f"http://127.0.0.1:{settings.sandbox_port}/_sandbox/healthz"
            )
        pending = [lane for lane in LANES if not checks[lane]]
        if pending:
            for reply in celery.control.ping(timeout=0.5) or []:
                for worker in reply:
                    lane = worker.split("@", 1)[0].split("-", 1)[0]
                    if lane in checks:
                        checks[lane] = True
        time.sleep(0.3)
    return all(checks.values())


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def print_urls(settings: Settings) -> None:
    base = f"http://{settings.host}:{settings.port}"
    say(f"receiver     {base}/webhooks/<source>   (health {base}/healthz, ready {base}/readyz)")
    token = "STACKWIRE_ADMIN_TOKEN" if settings.admin_token else f"{settings.data_dir}/admin.token"
    say(f"admin API    {base}/api/openapi.json   (Bearer token: {token})")
    say(f"metrics      {base}/metrics   (every process of this run, Prometheus text format)")
    say(f"sandbox      http://127.0.0.1:{settings.sandbox_port}/_sandbox/summary")
    say(f"flower       http://127.0.0.1:{settings.flower_port}/")
    say(f"database     {settings.database_url}")
    say(f"redis        {settings.redis_url}")


def up(settings: Settings, config: Config, *, sandbox: bool = True) -> int:
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    record = first_record(settings, sandbox=sandbox)
    running = claim_run_file(data, record)
    if running is not None:
        say(
            f"stackwire up is already running on {data} (pid {running.pid}); "
            f"stop it with Ctrl-C in its terminal or `kill {running.pid}`"
        )
        return 1
    try:
        taken = taken_ports(settings, sandbox=sandbox)
        for sentence in taken:
            say(sentence)
        return 1 if taken else run(settings, config, record, sandbox=sandbox)
    except ServerFailed as exc:
        say(str(exc))
        return 1
    finally:
        release_run_file(data, record)


def run(settings: Settings, config: Config, record: RunRecord, *, sandbox: bool) -> int:
    data = settings.data_dir.resolve()
    supervisor = Supervisor(say)
    supervisor.install_signal_handlers()
    servers: list[Server] = []
    try:
        settings = start_servers(settings, servers)
        record = servers_record(record, settings, servers)
        update_run_file(data, record)
        say("applying migrations")
        migrate(settings)
        # a previous run's files would add its counts to this run's
        multiproc.prepare(metrics_dir(settings), wipe=True)
        for child in children(settings, config, sandbox=sandbox):
            supervisor.add(child)
        print_urls(settings)
        if wait_until_ready(settings, sandbox=sandbox, stopping=lambda: supervisor.stopping):
            update_run_file(data, record.updated(state=READY))
            say("ready")
        elif not supervisor.stopping:
            say("not ready after two minutes; see the logs above")
        supervisor.watch()
    finally:
        supervisor.stop_all()
        for server in reversed(servers):
            server.stop()
        say("stopped")
    return 0
