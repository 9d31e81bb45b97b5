"""verify -> fetch: thin wrappers over `pipeline.processing`."""

from __future__ import annotations

from collections.abc import Callable

from celery import Task, shared_task

from pipeline import keys
from pipeline.delivery.deadletter import fail_event
from pipeline.errors import RetryableError, classify
from pipeline.flow.fetch import fetch_event
from pipeline.flow.steps import retry_step_later
from pipeline.flow.verify import verify_event
from pipeline.runtime import Runtime
from tasks.base import INFRASTRUCTURE_ERRORS, retry_infrastructure, runtime_of


@shared_task(name=keys.VERIFY, bind=True)
def verify(self: Task, event_id: int) -> str:
    return _run(self, "verify", verify_event, int(event_id))


@shared_task(name=keys.FETCH, bind=True)
def fetch(self: Task, event_id: int) -> str:
    return _run(self, "fetch", fetch_event, int(event_id))


def _run(task: Task, step: str, work: Callable[[Runtime, int], str], event_id: int) -> str:
    rt = runtime_of(task.app)
    try:
        return work(rt, event_id)
    except INFRASTRUCTURE_ERRORS as exc:
        retry_infrastructure(task, exc)
        raise
    except Exception as exc:  # every other exception is classified: nothing is left stranded
        failure = classify(exc, f"{step} of event {event_id}")
        if isinstance(failure, RetryableError):
            return _retry_or_fail(task, event_id, failure, step)
        fail_event(rt, event_id, failure, step)
        return "failed"


def _retry_or_fail(task: Task, event_id: int, exc: RetryableError, step: str) -> str:
    """The provider we read from is unavailable: back off, or give up once the window is spent."""
    rt = runtime_of(task.app)
    delay = retry_step_later(rt, event_id, exc, step, task.request.retries + 1)
    if delay is None:
        return "failed"
    raise task.retry(exc=exc, countdown=delay, max_retries=None)
