"""`stackwire`: the one command an operator types, and the composition root of the product.

`worker`, `beat`, `flower`, `receiver` start one part (what docker-compose and `stackwire up` run);
`events`, `trace`, `dlq`, `replay`, `destinations` and `audit` are the operator's tools
(`pipeline.cli.operations`); `check-config` validates a config file without
starting anything. Beside `make run` (no DATABASE_URL/REDIS_URL set) every command finds the
embedded servers through the run file `stackwire up` writes; with no server named anywhere, a
command says so in one sentence and exits 1. Each command imports what it needs (Celery, the
tasks) when it runs, so `stackwire --help` loads neither. Commands of installed extensions (the
development checkout's `up`, `sandbox`, `simulate`, `bench`) join through the `stackwire.commands`
entry points, the way Celery's own `celery.commands` and Flask's `flask.commands` work: the
product never imports them.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from pipeline.config.load import load_config
from pipeline.config.model import Config
from pipeline.errors import INFRASTRUCTURE_ERRORS, ConfigError, ServersNotFound
from pipeline.keys import LANES
from pipeline.settings import Settings


def load_settings() -> Settings:
    return Settings.from_env()


def load_checked_config(settings: Settings) -> Config:
    try:
        return load_config(settings.config_path, settings.env)
    except ConfigError as exc:
        raise click.ClickException(f"config error in {settings.config_path}: {exc}") from None


class StackwireGroup(click.Group):
    """The product's commands plus those installed extensions declare as entry points."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_extension_commands()})

    def invoke(self, ctx: click.Context) -> Any:
        # an operator reads one sentence, not a traceback, when there is nothing to talk to
        try:
            return super().invoke(ctx)
        except ServersNotFound as exc:
            raise click.ClickException(str(exc)) from None
        except INFRASTRUCTURE_ERRORS as exc:
            raise click.ClickException(_unreachable(exc)) from None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in _extension_commands():
            command = _extension_commands()[cmd_name].load()
            found = command if isinstance(command, click.Command) else None
        return found


def _extension_commands() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group="stackwire.commands")}


def _unreachable(exc: Exception) -> str:
    server = "PostgreSQL" if "sqlalchemy" in type(exc).__module__ else "Redis or the broker"
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{server} does not answer ({detail[0] if detail else type(exc).__name__})"


@click.group(cls=StackwireGroup)
def main() -> None:
    """Stackwire: webhooks in, exactly-once effects out."""


@main.command("check-config")
def check_config() -> None:
    """Validate the config file named by STACKWIRE_CONFIG."""
    settings = load_settings()
    config = load_checked_config(settings)
    click.echo(
        f"{settings.config_path}: {len(config.sources)} sources, "
        f"{len(config.destinations)} destinations, {len(config.flows)} flows: valid"
    )


@main.command()
def migrate() -> None:
    """Apply database migrations."""
    from pipeline.log.db import migrate as run_migrate

    run_migrate(load_settings())
    click.echo("migrations applied")


@main.command()
@click.option("--lane", type=click.Choice(LANES), required=True)
@click.option("--concurrency", type=int, default=1, show_default=True)
@click.option("--name", default=None, help="Node name (default: the lane); unique per host.")
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo", "threads"]),
    default=None,
    help="Celery pool (default prefork, or STACKWIRE_WORKER_POOL): only prefork enforces "
    "task time limits.",
)
@click.option(
    "--max-tasks-per-child",
    type=int,
    default=None,
    help="Replace a pool process after this many tasks (Celery's option; bounds a leak).",
)
def worker(
    lane: str, concurrency: int, name: str | None, pool: str | None, max_tasks_per_child: int | None
) -> None:
    """Run a Celery worker consuming one lane."""
    from pipeline.logging import configure_logging
    from tasks.celery_app import create_celery

    settings = load_settings()
    settings.require_servers()
    config = load_checked_config(settings)  # fail fast, with the key named, before Celery starts
    configure_logging(settings, component=f"worker-{lane}")
    if config.lanes[lane].nice:
        # under load the kernel serves payments and enrollments first; pool children inherit it
        os.nice(config.lanes[lane].nice)
    app = create_celery(settings, task_events=settings.task_events)
    app.worker_main(
        [
            "worker",
            "-Q",
            f"{lane},maintenance",
            "-n",
            f"{name or lane}@%h",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            settings.log_level,
            "--without-gossip",
            "--without-mingle",
            "--pool",
            pool or settings.worker_pool,
            *(["--max-tasks-per-child", str(max_tasks_per_child)] if max_tasks_per_child else []),
        ]
    )


@main.command()
def beat() -> None:
    """Run Celery Beat with the schedule from tasks/celery_app.py."""
    from pipeline.logging import configure_logging
    from tasks.celery_app import create_celery

    settings = load_settings()
    settings.require_servers()
    configure_logging(settings, component="beat")
    app = create_celery(settings)
    schedule = settings.data_dir.resolve() / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    app.start(["beat", "-s", str(schedule), "--loglevel", settings.log_level])


@main.command()
def flower() -> None:
    """Run Flower, Celery's monitoring UI (FLOWER_BASIC_AUTH=user:password asks for a login)."""
    import logging

    from pipeline.logging import Demoted, configure_logging
    from tasks.celery_app import create_celery

    settings = load_settings()
    configure_logging(settings, component="flower")
    # until every worker has started, each inspection Flower sends fails with a warning; the
    # UI shows which workers are offline
    logging.getLogger("flower.inspector").setLevel(logging.ERROR)
    # its start-up banner lists every registered task, one per line
    logging.getLogger("flower.command").addFilter(Demoted("Registered tasks"))
    app = create_celery(settings)
    options = [f"--port={settings.flower_port}", f"--address={settings.flower_address}"]
    if settings.flower_basic_auth:
        options.append(f"--basic-auth={settings.flower_basic_auth}")
    # Flower's (tornado's) own logging setup stays out: ours formats its lines like the rest
    app.start(["flower", *options, "--logging=none"])


@main.command()
def receiver() -> None:
    """Serve the webhook receiver under gunicorn."""
    load_settings().require_servers()
    os.execv(
        sys.executable,
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:receivers.gunicorn_conf",
            "receivers.app:create_app()",
        ],
    )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
def status(as_json: bool) -> None:
    """Servers, lanes, the periodic jobs' last runs and open dead letters; exits 1 on a problem."""
    import time

    from rich.console import Console

    from pipeline.status import collect, render
    from tasks.celery_app import create_celery

    settings = load_settings()
    settings.require_servers()
    report = collect(settings, create_celery(settings, task_events=False), now=time.time())
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        render(report, Console())
    sys.exit(1 if report.problems else 0)


def build_runtime() -> Any:
    """Settings, the checked config and the clients an operator command needs."""
    from pipeline.runtime import Runtime
    from tasks.celery_app import create_celery

    settings = load_settings()
    settings.require_servers()
    config = load_checked_config(settings)
    return Runtime.build(settings, create_celery(settings, task_events=False), config=config)


from pipeline.cli import operations  # noqa: E402  (its commands join `main`)

operations.register(main)
