"""Periodic jobs (scheduled in `tasks.celery_app.beat_schedule`): the sweeper, the circuit prober
and the replay watchdog; and the replay plans' chunks (`pipeline.ops.replays`).

Neither is retried when a server is unreachable: the next run, a few seconds later, tries again.
Each records a run that completed (`pipeline.flow.liveness`), so one that stops is seen.
"""

from __future__ import annotations

from celery import Task, shared_task

from pipeline import keys
from pipeline.delivery.gates.holds import probe_circuits as probe
from pipeline.errors import INFRASTRUCTURE_ERRORS
from pipeline.flow.liveness import record_run
from pipeline.flow.sweeper import sweep as sweep_log
from pipeline.ops.replays import continue_plan, resume_stalled
from tasks.base import run_or_retry, runtime_of


@shared_task(name=keys.SWEEP, bind=True, ignore_result=True)
def sweep(self: Task) -> dict[str, int]:
    try:
        rt = runtime_of(self.app)
        report = sweep_log(rt)
        record_run(rt.redis, keys.SWEEPER_JOB, rt.clock())
        return report.__dict__
    except INFRASTRUCTURE_ERRORS:
        return {}


@shared_task(name=keys.PROBE_CIRCUITS, bind=True, ignore_result=True)
def probe_circuits(self: Task) -> dict[str, str]:
    try:
        rt = runtime_of(self.app)
        report = probe(rt)
        record_run(rt.redis, keys.PROBER_JOB, rt.clock())
        return report
    except INFRASTRUCTURE_ERRORS:
        return {}


@shared_task(name=keys.RUN_REPLAY, bind=True, ignore_result=True)
def run_replay(self: Task, plan_id: str) -> bool:
    return run_or_retry(self, lambda rt: continue_plan(rt, str(plan_id)))


@shared_task(name=keys.RESUME_REPLAYS, bind=True, ignore_result=True)
def resume_replays(self: Task) -> list[str]:
    try:
        return resume_stalled(runtime_of(self.app))
    except INFRASTRUCTURE_ERRORS:
        return []
