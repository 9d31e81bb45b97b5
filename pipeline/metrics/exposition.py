"""What a scrape returns: this host's process metrics (every process's files in multiprocess
mode, else this process's own), plus, at the receiver, the scrape-time gauges."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import start_http_server

from pipeline.metrics import multiproc
from pipeline.metrics.collectors import ScrapeCollector
from pipeline.metrics.definitions import metrics
from pipeline.settings import Settings

log = logging.getLogger(__name__)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class _ThisProcess:
    """Single-process mode: the metrics this process counted."""

    def collect(self) -> Iterable[Metric]:
        return list(metrics().registry.collect())


def process_registry(settings: Settings) -> CollectorRegistry:
    registry = CollectorRegistry()
    if settings.metrics_dir is not None:
        registry.register(multiproc.DirectoryCollector(settings.metrics_dir))
    else:
        registry.register(_ThisProcess())
    return registry


def render(settings: Settings, scrape: ScrapeCollector | None = None) -> bytes:
    registry = process_registry(settings)
    if scrape is not None:
        registry.register(scrape)
    return generate_latest(registry)


def prepare_directory(settings: Settings) -> None:
    """The multiprocess directory exists before a process of this host counts (no wipe here: under
    `stackwire up` the other processes' files are in it; `stackwire up` wipes it at start)."""
    if settings.metrics_dir is not None:
        multiproc.prepare(settings.metrics_dir)


def retire_process(settings: Settings, pid: int) -> None:
    if settings.metrics_dir is not None:
        multiproc.retire(settings.metrics_dir, pid)


def serve(settings: Settings) -> Any:
    """A worker's own /metrics (docker-compose: one scrape target per worker container), served
    from its main process only, on `STACKWIRE_METRICS_PORT`."""
    if settings.metrics_port is None:
        return None
    registry = process_registry(settings)
    server, _thread = start_http_server(settings.metrics_port, settings.host, registry=registry)
    log.info("metrics served", extra={"port": settings.metrics_port, "host": settings.host})
    return server


def directory_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.db"))
