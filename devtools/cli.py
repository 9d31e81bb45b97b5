"""Commands only a development checkout has, added to `stackwire` through the `stackwire.commands`
entry points of the `stackwire-devtools` distribution (devtools/pyproject.toml): `up` starts the
whole system on embedded servers, `sandbox` serves the emulated provider APIs, `simulate` plays a
provider against the receiver, `bench` measures. The product never imports this package.
"""

from __future__ import annotations

import json
import os
import sys

import click

from pipeline.cli import load_checked_config, load_settings


@click.command()
@click.option("--no-sandbox", is_flag=True, help="Do not start the provider sandbox.")
def up(no_sandbox: bool) -> None:
    """Start the whole system in the foreground (Ctrl-C stops it)."""
    from devtools.local.up import up as run_up

    settings = load_settings()
    config = load_checked_config(settings)
    sys.exit(run_up(settings, config, sandbox=not no_sandbox))


@click.command()
@click.option("--port", type=int, default=None, help="Defaults to SANDBOX_PORT (8100).")
def sandbox(port: int | None) -> None:
    """Serve the provider sandbox (every emulated provider API) on one port."""
    settings = load_settings()
    os.environ["SANDBOX_PORT"] = str(port or settings.sandbox_port)
    os.execv(
        sys.executable,
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:devtools.sandbox.gunicorn_conf",
            "devtools.sandbox.app:create_sandbox_app()",
        ],
    )


@click.command()
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
    from devtools import simulate as sim

    settings = load_settings()
    config = load_checked_config(settings)
    configured = config.sources.get(source)
    if configured is None or configured.provider.name != "stripe":
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


@click.command()
@click.option("--output", default="docs/benchmarks.md", show_default=True, help="Markdown report.")
@click.option("--quick", is_flag=True, help="Small sizes: a smoke run of every part.")
@click.option(
    "--only",
    "parts",
    multiple=True,
    type=click.Choice(["ingest", "e2e", "scaling", "isolation", "search"]),
    help="Run only these parts (repeatable); default all.",
)
def bench(output: str, quick: bool, parts: tuple[str, ...]) -> None:
    """Measure ingest, end-to-end throughput, scaling and lane isolation; write the report."""
    from pathlib import Path

    from devtools.bench import report, run

    sizes = run.Sizes.quick() if quick else run.Sizes()
    chosen = parts or run.PARTS
    results = run.run(sizes, lambda message: click.echo(f"bench | {message}"), chosen)
    command = "make bench" if not quick else "stackwire bench --quick"
    if parts:
        command = "stackwire bench " + " ".join(f"--only {part}" for part in parts)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(report.render(results, command))
    click.echo(f"bench | report written to {output}")
