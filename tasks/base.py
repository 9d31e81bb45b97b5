"""What every task shares: the process's Runtime, log context, and which errors mean 'infrastructure'.

The Runtime (engine, Redis, HTTP session, config) is built once per worker process, after the
fork (`worker_process_init`), never at import. Log context is bound before each task and cleared
after it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Celery, Task, current_app
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)

from pipeline import logging as pipeline_logging
from pipeline.delivery.policy import backoff
from pipeline.errors import INFRASTRUCTURE_ERRORS
from pipeline.metrics import definitions, exposition
from pipeline.metrics.definitions import metrics
from pipeline.runtime import Runtime

log = logging.getLogger(__name__)
MAX_INFRASTRUCTURE_RETRIES = 100
T = TypeVar("T")


def runtime_of(app: Celery) -> Runtime:
    runtime: Runtime | None = getattr(app, "stackwire_runtime", None)
    if runtime is None:
        runtime = Runtime.build(app.stackwire_settings, app)
        app.stackwire_runtime = runtime
    return runtime


def run_or_retry(task: Task, work: Callable[[Runtime], T]) -> T:
    """Runs the pipeline function; while our own PostgreSQL, Redis or broker is unreachable the
    work itself is fine, so the task is re-queued with the policy's capped, jittered backoff."""
    try:
        return work(runtime_of(task.app))
    except INFRASTRUCTURE_ERRORS as exc:
        countdown = backoff(task.request.retries + 1, base=0.5, cap=30.0)
        raise task.retry(
            exc=exc, countdown=countdown, max_retries=MAX_INFRASTRUCTURE_RETRIES
        ) from exc


@worker_process_init.connect
def _build_runtime_after_fork(**_: Any) -> None:
    # connections opened before the fork belong to the parent: start afresh
    current_app.stackwire_runtime = None
    definitions.initialise(runtime_of(current_app).config.destinations)


@task_prerun.connect
def _bind_log_context(task_id: str, task: Task, args: tuple[Any, ...], **_: Any) -> None:
    delivery = task.request.delivery_info or {}
    pipeline_logging.bind(
        task_id=task_id,
        task=task.name,
        lane=delivery.get("routing_key"),
        subject=args[0] if args else None,
    )


@task_postrun.connect
def _clear_log_context(task: Task, state: str | None = None, **_: Any) -> None:
    pipeline_logging.clear()
    metrics().tasks.labels(task.name, state or "UNKNOWN").inc()


# -- metrics: multiprocess mode (pipeline.metrics.multiproc) ------------------------------------


@worker_init.connect
def _prepare_metrics(sender: Any = None, **_: Any) -> None:
    # in the main process, before the pool forks: the directory every pool process writes to
    exposition.prepare_directory(current_app.stackwire_settings)


@worker_ready.connect
def _serve_metrics(sender: Any = None, **_: Any) -> None:
    # the main process only (never a pool child): the worker's own scrape target, when a port
    # is set (docker-compose); under `stackwire up` the receiver's /metrics serves every process
    exposition.serve(current_app.stackwire_settings)


@worker_process_shutdown.connect
def _retire_metrics(pid: int | None = None, **_: Any) -> None:
    # in the pool process as it exits: its counts folded into the archive, its files removed
    try:
        exposition.retire_process(current_app.stackwire_settings, pid or os.getpid())
    except OSError as exc:  # the next scrape reaps what is left
        log.warning("could not retire this process's metrics", extra={"error": str(exc)})
