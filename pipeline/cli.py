"""`stackwire`: the one command an operator types.

`up` starts everything; `worker`, `beat`, `flower`, `sandbox`, `receiver` start one part (what
`up` and docker-compose run); `simulate` plays a provider; `dlq` and `destinations` are the
operator's levers; `check-config` validates a config file without starting anything.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from pipeline.config import Config, ConfigError, load_config
from pipeline.settings import Settings
from schemas.config import LANES


def _settings() -> Settings:
    return Settings.from_env()


def _config(settings: Settings) -> Config:
    try:
        return load_config(settings.config_path, settings.env)
    except ConfigError as exc:
        raise click.ClickException(f"config error in {settings.config_path}: {exc}") from None


@click.group()
def main() -> None:
    """Stackwire: webhooks in, exactly-once effects out."""


@main.command()
@click.option("--no-sandbox", is_flag=True, help="Do not start the provider sandbox.")
def up(no_sandbox: bool) -> None:
    """Start the whole system in the foreground (Ctrl-C stops it)."""
    from pipeline.up import up as run_up

    settings = _settings()
    config = _config(settings)
    sys.exit(run_up(settings, config, sandbox=not no_sandbox))


@main.command("check-config")
def check_config() -> None:
    """Validate the config file named by STACKWIRE_CONFIG."""
    settings = _settings()
    config = _config(settings)
    click.echo(
        f"{settings.config_path}: {len(config.sources)} sources, "
        f"{len(config.destinations)} destinations, {len(config.flows)} flows: valid"
    )


@main.command()
def migrate() -> None:
    """Apply database migrations."""
    from pipeline.db import migrate as run_migrate

    run_migrate(_settings())
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
def worker(lane: str, concurrency: int, name: str | None, pool: str | None) -> None:
    """Run a Celery worker consuming one lane."""
    from pipeline.celery_app import create_celery
    from pipeline.logging import configure_logging

    settings = _settings()
    config = _config(settings)  # fail fast, with the key named, before Celery starts
    configure_logging(settings, component=f"worker-{lane}")
    if config.lanes[lane].nice:
        # under load the kernel serves payments and enrollments first; pool children inherit it
        os.nice(config.lanes[lane].nice)
    app = create_celery(settings, task_events=os.environ.get("STACKWIRE_TASK_EVENTS", "1") == "1")
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
            pool or os.environ.get("STACKWIRE_WORKER_POOL", "prefork"),
        ]
    )


@main.command()
def beat() -> None:
    """Run Celery Beat with the schedule from tasks/schedule.py."""
    from pipeline.celery_app import create_celery
    from pipeline.logging import configure_logging

    settings = _settings()
    configure_logging(settings, component="beat")
    app = create_celery(settings)
    schedule = settings.data_dir.resolve() / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    app.start(["beat", "-s", str(schedule), "--loglevel", settings.log_level])


@main.command()
def flower() -> None:
    """Run Flower, Celery's monitoring UI."""
    from pipeline.celery_app import create_celery

    settings = _settings()
    app = create_celery(settings)
    address = os.environ.get("FLOWER_ADDRESS", "127.0.0.1")
    app.start(["flower", f"--port={settings.flower_port}", f"--address={address}"])


@main.command()
@click.option("--port", type=int, default=None, help="Defaults to SANDBOX_PORT (8100).")
def sandbox(port: int | None) -> None:
    """Serve the provider sandbox (every emulated provider API) on one port."""
    settings = _settings()
    os.environ["SANDBOX_PORT"] = str(port or settings.sandbox_port)
    os.execv(
        sys.executable,
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:pipeline.sandbox.gunicorn_conf",
            "pipeline.sandbox.app:create_sandbox_app()",
        ],
    )


@main.command()
def receiver() -> None:
    """Serve the webhook receiver under gunicorn."""
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
@click.option(
    "--scenario", type=click.Choice(["purchases"]), default="purchases", show_default=True
)
@click.option("--count", type=int, default=50, show_default=True)
@click.option(
    "--rate", type=float, default=0.0, help="Webhooks per second; 0 = as fast as possible."
)
@click.option("--concurrency", type=int, default=8, show_default=True)
@click.option(
    "--redeliver",
    type=float,
    default=0.2,
    show_default=True,
    help="Share of webhooks delivered a second time, shuffled.",
)
@click.option("--source", default="stripe", show_default=True, help="The config source to send to.")
@click.option("--price", default=None, help="Stripe price id; defaults to the first in [products].")
def simulate(
    *,
    scenario: str,
    count: int,
    rate: float,
    concurrency: int,
    redeliver: float,
    source: str,
    price: str | None,
) -> None:
    """Play a provider: create purchases in the sandbox and send their signed webhooks."""
    from pipeline import simulate as sim

    settings = _settings()
    config = _config(settings)
    configured = config.sources.get(source)
    if configured is None or configured.provider != "stripe":
        raise click.ClickException(f"no Stripe source named {source!r} in the config")
    report = sim.purchases(
        receiver_url=f"http://{settings.host}:{settings.port}",
        sandbox_url=f"http://127.0.0.1:{settings.sandbox_port}",
        source=source,
        secret=configured.signing_secrets[0],
        count=count,
        rate=rate,
        concurrency=concurrency,
        redeliver=redeliver,
        price=price or next(iter(config.products), "price_1PgafmB7WZ01zgkW6dKueIc5"),
    )
    click.echo(json.dumps(report.as_dict(), indent=2))


@main.command()
@click.option("--output", default="docs/benchmarks.md", show_default=True, help="Markdown report.")
@click.option("--quick", is_flag=True, help="Small sizes: a smoke run of every part.")
def bench(output: str, quick: bool) -> None:
    """Measure ingest, end-to-end throughput, scaling and lane isolation; write the report."""
    from pathlib import Path

    from pipeline.bench import report, run

    sizes = run.Sizes.quick() if quick else run.Sizes()
    results = run.run(sizes, lambda message: click.echo(f"bench | {message}"))
    command = "make bench" if not quick else "stackwire bench --quick"
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(report.render(results, command))
    click.echo(f"bench | report written to {output}")


@main.group()
def dlq() -> None:
    """Inspect and replay the dead-letter queue."""


@dlq.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include replayed entries.")
def dlq_list(show_all: bool) -> None:
    from sqlalchemy import text

    from pipeline.db import create_db_engine

    engine = create_db_engine(_settings())
    query = (
        "SELECT id, event_id, delivery_id, step, failure_class, reason, status, created_at, error "
    )
    query += "FROM dead_letters " + ("" if show_all else "WHERE status = 'open' ") + "ORDER BY id"
    with engine.connect() as connection:
        for row in connection.execute(text(query)).mappings():
            click.echo(json.dumps(dict(row), default=str))


@dlq.command("replay")
@click.argument("dead_letter_ids", type=int, nargs=-1, required=True)
def dlq_replay(dead_letter_ids: tuple[int, ...]) -> None:
    from pipeline.deadletter import replay

    runtime = _runtime()
    for dead_letter_id in dead_letter_ids:
        click.echo(json.dumps(replay(runtime, dead_letter_id).__dict__))


@main.group()
def destinations() -> None:
    """Pause, resume and inspect destinations."""


@destinations.command("status")
def destinations_status() -> None:
    from pipeline import circuit

    runtime = _runtime()
    for name in runtime.config.destinations:
        click.echo(json.dumps({"destination": name, **circuit.state(runtime.redis, name)}))


@destinations.command("pause")
@click.argument("name")
def destinations_pause(name: str) -> None:
    from pipeline.holds import pause

    runtime = _runtime()
    _known_destination(runtime.config, name)
    pause(runtime, name)
    click.echo(f"{name}: paused; its deliveries are held until you resume it")


@destinations.command("resume")
@click.argument("name")
def destinations_resume(name: str) -> None:
    from pipeline.holds import resume

    runtime = _runtime()
    _known_destination(runtime.config, name)
    click.echo(f"{name}: resumed; {resume(runtime, name)} held deliveries released")


def _known_destination(config: Config, name: str) -> None:
    if name not in config.destinations:
        raise click.ClickException(f"no destination named {name!r} in the config")


def _runtime() -> Any:
    from pipeline.celery_app import create_celery
    from pipeline.runtime import Runtime

    settings = _settings()
    return Runtime.build(settings, create_celery(settings), config=_config(settings))


if __name__ == "__main__":
    main()
