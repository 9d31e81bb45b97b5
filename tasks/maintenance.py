"""Periodic jobs (scheduled in `tasks.schedule`): the sweeper and the circuit prober."""

from __future__ import annotations

from celery import Task, shared_task

from pipeline.delivery.gates.holds import probe_circuits as probe
from pipeline.flow.sweeper import sweep as sweep_log
from tasks.base import INFRASTRUCTURE_ERRORS, runtime_of


@shared_task(name="stackwire.sweep", bind=True, ignore_result=True)
def sweep(self: Task) -> dict[str, int]:
    try:
        return sweep_log(runtime_of(self.app)).__dict__
    except INFRASTRUCTURE_ERRORS:
        # the next run, a few seconds from now, tries again
        return {}


@shared_task(name="stackwire.probe_circuits", bind=True, ignore_result=True)
def probe_circuits(self: Task) -> dict[str, str]:
    try:
        return probe(runtime_of(self.app))
    except INFRASTRUCTURE_ERRORS:
        return {}
