"""Gunicorn settings for the receiver, shared by `stackwire up`, docker-compose and the benchmark.

Threaded workers (gthread): each request is a short burst of CPU and two local round trips
(PostgreSQL, Redis); threads overlap those waits and keep connections alive. Measured against
sync workers in `make bench` (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

from pipeline.metrics import exposition
from pipeline.settings import Settings

_settings = Settings.from_env()
bind = f"{_settings.host}:{_settings.port}"
workers = _settings.receiver_workers
worker_class = _settings.receiver_worker_class
threads = _settings.receiver_threads
# a request that takes this long is stuck: the worker is replaced
timeout = 30
graceful_timeout = 20
keepalive = 5
backlog = 2048
# no access log on the hot path; the event log is the record of every accepted webhook
accesslog = None
errorlog = "-"
loglevel = "warning"
proc_name = "stackwire-receiver"


# Prometheus multiprocess mode (pipeline.metrics.multiproc): the directory exists before a
# worker counts, and a worker the arbiter reaped has its counts folded into the archive
def on_starting(server: Any) -> None:
    exposition.prepare_directory(_settings)


def child_exit(server: Any, worker: Any) -> None:
    exposition.retire_process(_settings, worker.pid)
