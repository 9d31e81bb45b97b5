"""deliver (one action) and flush (a batching destination): thin wrappers over `pipeline.delivery`."""

from __future__ import annotations

from celery import Task, shared_task

from pipeline import keys
from pipeline.delivery.attempt import attempt
from pipeline.delivery.batch import flush as flush_destination
from tasks.base import run_or_retry


@shared_task(name=keys.DELIVER, bind=True)
def deliver(self: Task, delivery_id: int) -> str:
    claimant = self.request.id
    return run_or_retry(self, lambda rt: attempt(rt, int(delivery_id), claimant=claimant))


@shared_task(name=keys.FLUSH, bind=True)
def flush(self: Task, destination: str) -> int:
    return run_or_retry(self, lambda rt: flush_destination(rt, str(destination)))
