"""`stackwire up`: the whole system in the foreground, on embedded servers unless URLs are given.

Order: servers (embedded PostgreSQL and Redis when DATABASE_URL/REDIS_URL are unset), migrations,
then the sandbox, the receiver, one worker per lane, Beat and Flower. It prints every URL, then
"ready" once the receiver's /readyz answers 200 and a worker of every lane has answered a ping.
"""

from __future__ import annotations

import sys
import time

import requests

from devtools.local.embedded import EmbeddedPostgres, EmbeddedRedis
from devtools.local.supervisor import Child, Supervisor
from pipeline.config.model import Config
from pipeline.keys import LANES
from pipeline.log.db import migrate
from pipeline.settings import Settings
from tasks.celery_app import create_celery

READY_TIMEOUT = 120.0


def say(message: str) -> None:
    print(f"stackwire | {message}", flush=True)


def start_servers(settings: Settings) -> tuple[Settings, list[EmbeddedPostgres | EmbeddedRedis]]:
    servers: list[EmbeddedPostgres | EmbeddedRedis] = []
    data = settings.data_dir.resolve()
    (data / "logs").mkdir(parents=True, exist_ok=True)
    database_url, redis_url = settings.database_url, settings.redis_url
    if not database_url:
        postgres = EmbeddedPostgres(data / "postgres", settings.embedded_pg_port)
        say(
            f"starting embedded PostgreSQL on 127.0.0.1:{postgres.port} (data in {postgres.data_dir})"
        )
        database_url = postgres.start(data / "logs" / "postgres.log")
        servers.append(postgres)
    if not redis_url:
        redis_server = EmbeddedRedis(data / "redis", settings.embedded_redis_port)
        say(f"starting embedded Redis on 127.0.0.1:{redis_server.port} (append-only file on)")
        redis_url = redis_server.start(data / "logs" / "redis.log")
        servers.append(redis_server)
    return settings.with_servers(database_url, redis_url), servers


def child_env(settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.require_database_url(),
        "REDIS_URL": settings.require_redis_url(),
        "STACKWIRE_CONFIG": str(settings.config_path.resolve()),
        "STACKWIRE_DATA_DIR": str(settings.data_dir.resolve()),
        "STACKWIRE_PORT": str(settings.port),
        "SANDBOX_PORT": str(settings.sandbox_port),
        "FLOWER_PORT": str(settings.flower_port),
        **({"BROKER_URL": settings.broker_url} if settings.broker_url else {}),
    }


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


def wait_until_ready(settings: Settings, *, sandbox: bool = True) -> bool:
    celery = create_celery(settings, task_events=False)
    deadline = time.monotonic() + READY_TIMEOUT
    base = f"http://{settings.host}:{settings.port}"
    checks = {"receiver": False, "sandbox": not sandbox, **{lane: False for lane in LANES}}
    while time.monotonic() < deadline and not all(checks.values()):
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
    say(f"sandbox      http://127.0.0.1:{settings.sandbox_port}/_sandbox/summary")
    say(f"flower       http://127.0.0.1:{settings.flower_port}/")
    say(f"database     {settings.database_url}")
    say(f"redis        {settings.redis_url}")


def up(settings: Settings, config: Config, *, sandbox: bool = True) -> int:
    settings, servers = start_servers(settings)
    supervisor = Supervisor(say)
    supervisor.install_signal_handlers()
    try:
        say("applying migrations")
        migrate(settings)
        for child in children(settings, config, sandbox=sandbox):
            supervisor.add(child)
        print_urls(settings)
        if wait_until_ready(settings, sandbox=sandbox):
            say("ready")
        else:
            say("not ready after two minutes; see the logs above")
        supervisor.watch()
    finally:
        supervisor.stop_all()
        for server in reversed(servers):
            server.stop()
        say("stopped")
    return 0
