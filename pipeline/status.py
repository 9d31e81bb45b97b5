"""`stackwire status`: the whole system at a glance, for an operator or a script (`--json`).

Each server reachable or not (PostgreSQL, Redis, the broker when it is another, the receiver's
readiness), each lane's queue depth and the workers consuming it, when Beat, the sweeper and the
prober last ran, and the open dead letters by failure class. Every probe has a short timeout and
a server that does not answer is reported, never raised: the report is most useful exactly when
something is down.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from celery import Celery
from kombu.exceptions import ChannelError
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import INFRASTRUCTURE_ERRORS
from pipeline.flow import liveness
from pipeline.keys import JOBS, LANES, MAINTENANCE
from pipeline.log.db import create_db_engine
from pipeline.runfile import RunRecord
from pipeline.runtime import create_redis
from pipeline.settings import Settings

PING_SECONDS = 1.0
OPEN_DEAD_LETTERS = text(
    "SELECT failure_class, count(*) FROM dead_letters WHERE status = 'open' GROUP BY 1 ORDER BY 1"
)


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    reachable: bool
    detail: str


@dataclass(frozen=True)
class Lane:
    name: str
    queued: int | None  # None: the broker did not answer
    workers: int | None


@dataclass(frozen=True)
class Job:
    name: str
    last_run: float | None  # None: never ran
    seconds_ago: float | None
    overdue: bool


@dataclass(frozen=True)
class Report:
    servers: list[Server]
    lanes: list[Lane]
    jobs: list[Job] | None  # None: Redis did not answer
    dead_letters: dict[str, int] | None  # open ones by failure class; None: PostgreSQL did not
    run: RunRecord | None = field(default=None)

    @property
    def problems(self) -> list[str]:
        found = [f"{s.name}: {s.detail}" for s in self.servers if not s.reachable]
        late = [job for job in self.jobs or [] if job.overdue]
        return found + [f"{liveness.LABELS[job.name]} is overdue" for job in late]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": self.problems}


def collect(settings: Settings, celery: Celery, *, now: float, receiver: bool = True) -> Report:
    """`receiver=False`: the receiver is the one asking (the admin API), so it is not probed."""
    postgres, dead_letters = _postgres(settings)
    redis_server, jobs = _redis(settings, now)
    servers = [postgres, redis_server]
    broker = _broker(settings, celery)
    if settings.broker_url and settings.broker_url != settings.redis_url:
        servers.append(broker)
    if receiver:
        servers.append(_receiver(settings))
    return Report(servers, _lanes(celery, broker), jobs, dead_letters, settings.run)


def _postgres(settings: Settings) -> tuple[Server, dict[str, int] | None]:
    address = _address(settings.libpq_url)
    engine = create_db_engine(settings, pool_size=1)
    try:
        with engine.connect() as connection:
            rows = connection.execute(OPEN_DEAD_LETTERS).all()
    except SQLAlchemyError as exc:
        return Server("PostgreSQL", address, False, _first_line(exc)), None
    finally:
        engine.dispose()
    return Server("PostgreSQL", address, True, "reachable"), {row[0]: row[1] for row in rows}


def _redis(settings: Settings, now: float) -> tuple[Server, list[Job] | None]:
    address = _address(settings.require_redis_url())
    client = create_redis(settings)
    try:
        runs = liveness.last_runs(client)
    except RedisError as exc:
        return Server("Redis", address, False, _first_line(exc)), None
    finally:
        client.close()
    jobs = [_job(name, runs[name], now, settings.sweep_seconds) for name in JOBS]
    return Server("Redis", address, True, "reachable"), jobs


def _job(name: str, last: float | None, now: float, interval: float) -> Job:
    ago = None if last is None else round(now - last, 1)
    return Job(name, last, ago, liveness.is_overdue(last, now=now, interval=interval))


def _broker(settings: Settings, celery: Celery) -> Server:
    address = _address(settings.effective_broker_url)
    try:
        with celery.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
    except INFRASTRUCTURE_ERRORS as exc:
        return Server("broker", address, False, _first_line(exc))
    return Server("broker", address, True, "reachable")


def _receiver(settings: Settings) -> Server:
    url = f"http://{settings.host}:{settings.port}"
    try:
        answer = requests.get(f"{url}/readyz", timeout=2)
    except requests.RequestException:
        return Server("receiver", url, False, "does not answer")
    if answer.status_code == 200:
        return Server("receiver", url, True, "ready")
    try:
        detail = str(answer.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        detail = f"answers {answer.status_code}"
    return Server("receiver", url, False, detail)


def _queues() -> tuple[str, ...]:
    return (*LANES, MAINTENANCE)


def _lanes(celery: Celery, broker: Server) -> list[Lane]:
    unknown = [Lane(name, None, None) for name in _queues()]
    if not broker.reachable:
        return unknown  # asking would only wait for the broker's retries
    try:
        return _consumed(celery)
    except INFRASTRUCTURE_ERRORS:
        return unknown


def _consumed(celery: Celery) -> list[Lane]:
    consumers: dict[str, int] = dict.fromkeys(LANES, 0)
    for reply in celery.control.ping(timeout=PING_SECONDS) or []:
        for node in reply:
            lane = node.split("@", 1)[0].split("-", 1)[0]
            if lane in consumers:
                consumers[lane] += 1
    # every worker also serves the maintenance queue
    consumers[MAINTENANCE] = sum(consumers.values())
    depths = queue_depths(celery)
    return [Lane(name, depths[name], consumers[name]) for name in _queues()]


def queue_depths(celery: Celery) -> dict[str, int]:
    """Messages waiting in each lane's queue (and maintenance), as the broker counts them: on
    Redis kombu adds up the queue's priority sub-lists. Also read by `/metrics`."""
    with celery.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
        channel = connection.default_channel
        return {name: _depth(channel, name) for name in _queues()}


def _depth(channel: Any, queue: str) -> int:
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except ChannelError:  # never declared, or empty on Redis (kombu keeps no empty list)
        return 0


def _address(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _first_line(exc: BaseException) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# -- the table an operator reads ------------------------------------------------------------------


def render(report: Report, console: Console) -> None:
    if report.run is not None:
        console.print(
            f"stackwire up: pid {report.run.pid} ({report.run.state}), data in "
            f"{report.run.data_dir}, config {report.run.config_path}",
            soft_wrap=True,
        )
    servers = Table("server", "address", "state", title="Servers", title_justify="left")
    for server in report.servers:
        servers.add_row(server.name, server.address, _state(server.reachable, server.detail))
    console.print(servers)
    lanes = Table("queue", "waiting", "workers", title="Lanes", title_justify="left")
    for lane in report.lanes:
        lanes.add_row(lane.name, _count(lane.queued), _count(lane.workers))
    console.print(lanes)
    jobs = Table("job", "last run", title="Periodic jobs", title_justify="left")
    for job in report.jobs or []:
        jobs.add_row(job.name.capitalize(), _ago(job))
    if report.jobs is None:
        jobs.add_row("-", "unknown: Redis does not answer")
    console.print(jobs)
    console.print(_dead_letters(report.dead_letters))
    for problem in report.problems:
        console.print(f"[bold red]problem[/]: {problem}", highlight=False, soft_wrap=True)


def _state(ok: bool, detail: str) -> str:
    return f"[green]{detail}[/]" if ok else f"[bold red]{detail}[/]"


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _ago(job: Job) -> str:
    if job.seconds_ago is None:
        return "never"
    said = f"{job.seconds_ago:.0f} s ago"
    return f"[bold red]{said} (overdue)[/]" if job.overdue else said


def _dead_letters(found: dict[str, int] | None) -> str:
    if found is None:
        return "Open dead letters: unknown (PostgreSQL does not answer)"
    if not found:
        return "Open dead letters: none"
    by_class = ", ".join(f"{name} {count}" for name, count in found.items())
    return f"Open dead letters: {sum(found.values())} ({by_class}; `stackwire dlq list`)"
