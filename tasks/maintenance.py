"""Periodic jobs (scheduled in `tasks.celery_app.beat_schedule`): the sweeper and the circuit prober.

Neither is retried when a server is unreachable: the next run, a few seconds later, tries again.
"""

from __future__ import annotations

from celery import Task, shared_task

from pipeline import keys
from pipeline.delivery.gates.holds import probe_circuits as probe
from pipeline.errors import INFRASTRUCTURE_ERRORS
from pipeline.flow.sweeper import sweep as sweep_log
from tasks.base import runtime_of


@shared_task(name=keys.SWEEP, bind=True, ignore_result=True)
def sweep(self: Task) -> dict[str, int]:
    try:
        return sweep_log(runtime_of(self.app)).__dict__
    except INFRASTRUCTURE_ERRORS:
        return {}


@shared_task(name=keys.PROBE_CIRCUITS, bind=True, ignore_result=True)
def probe_circuits(self: Task) -> dict[str, str]:
    try:
        return probe(runtime_of(self.app))
    except INFRASTRUCTURE_ERRORS:
        return {}
