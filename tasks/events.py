"""verify -> fetch: thin wrappers over `pipeline.flow.retries.run_step`."""

from __future__ import annotations

from celery import Task, shared_task

from pipeline import keys
from pipeline.flow.retries import StepOutcome, run_step
from tasks.base import run_or_retry


@shared_task(name=keys.VERIFY, bind=True)
def verify(self: Task, event_id: int) -> str:
    return _act(self, _run(self, "verify", int(event_id)))


@shared_task(name=keys.FETCH, bind=True)
def fetch(self: Task, event_id: int) -> str:
    return _act(self, _run(self, "fetch", int(event_id)))


def _run(task: Task, step: str, event_id: int) -> StepOutcome:
    attempt = task.request.retries + 1
    return run_or_retry(task, lambda rt: run_step(rt, step, event_id, attempt=attempt))


def _act(task: Task, outcome: StepOutcome) -> str:
    if outcome.retry_in is not None:
        # the provider we read from is unavailable: the same message comes back after the wait
        raise task.retry(countdown=outcome.retry_in, max_retries=None)
    return outcome.status
