"""deliver (one action) and flush (a batching destination): thin wrappers over `pipeline`."""

from __future__ import annotations

from celery import Task, shared_task

from pipeline import keys
from pipeline.delivery.attempt import attempt, retry_later
from pipeline.delivery.batch import flush as flush_destination
from pipeline.delivery.deadletter import dead_letter_delivery
from pipeline.delivery.gates.holds import dead_letter_destination
from pipeline.errors import PermanentError, RetryableError
from tasks.base import INFRASTRUCTURE_ERRORS, retry_infrastructure, runtime_of


@shared_task(name=keys.DELIVER, bind=True)
def deliver(self: Task, delivery_id: int) -> str:
    rt = runtime_of(self.app)
    try:
        return attempt(rt, int(delivery_id), claimant=self.request.id)
    except RetryableError as exc:
        return retry_later(rt, int(delivery_id), exc)
    except PermanentError as exc:
        dead_letter_delivery(rt, int(delivery_id), exc)
        return "dead"
    except INFRASTRUCTURE_ERRORS as exc:
        retry_infrastructure(self, exc)
        raise


@shared_task(name=keys.FLUSH, bind=True)
def flush(self: Task, destination: str) -> int:
    rt = runtime_of(self.app)
    try:
        return flush_destination(rt, str(destination))
    except PermanentError as exc:
        # the destination itself is gone from the config: every due delivery dead-letters
        return dead_letter_destination(rt, str(destination), exc)
    except INFRASTRUCTURE_ERRORS as exc:
        retry_infrastructure(self, exc)
        raise
