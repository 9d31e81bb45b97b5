"""verify → fetch: thin wrappers over `pipeline.processing`."""

from __future__ import annotations

from celery import Task, shared_task

from pipeline import dispatch
from pipeline.deadletter import fail_event
from pipeline.errors import PermanentError, RetryableError
from pipeline.processing import fetch_event, retry_step_later, verify_event
from tasks.base import INFRASTRUCTURE_ERRORS, retry_infrastructure, runtime_of


@shared_task(name=dispatch.VERIFY, bind=True)
def verify(self: Task, event_id: int) -> str:
    rt = runtime_of(self.app)
    try:
        return verify_event(rt, int(event_id))
    except RetryableError as exc:
        return _retry_or_fail(self, event_id, exc, "verify")
    except PermanentError as exc:
        fail_event(rt, int(event_id), exc, "verify")
        return "failed"
    except INFRASTRUCTURE_ERRORS as exc:
        retry_infrastructure(self, exc)
        raise


@shared_task(name=dispatch.FETCH, bind=True)
def fetch(self: Task, event_id: int) -> str:
    rt = runtime_of(self.app)
    try:
        return fetch_event(rt, int(event_id))
    except RetryableError as exc:
        return _retry_or_fail(self, event_id, exc, "fetch")
    except PermanentError as exc:
        fail_event(rt, int(event_id), exc, "fetch")
        return "failed"
    except INFRASTRUCTURE_ERRORS as exc:
        retry_infrastructure(self, exc)
        raise


def _retry_or_fail(task: Task, event_id: int, exc: RetryableError, step: str) -> str:
    """The provider we read from is unavailable: back off, or give up once the window is spent."""
    delay = retry_step_later(
        runtime_of(task.app), int(event_id), exc, step, task.request.retries + 1
    )
    if delay is None:
        return "failed"
    raise task.retry(exc=exc, countdown=delay, max_retries=None)
