"""Whether the periodic jobs still run: Beat, the sweeper and the circuit prober.

Nothing else would notice them stop: webhooks are still accepted, only nothing lost is
republished any more and held work is never released. Each run writes its time under its own
key (`keys.last_run`); `/readyz` fails and `stackwire status` shows it when a job that has run
is more than STALE_INTERVALS sweep intervals late. A job with no record has never run (a fresh
system), which is not a failure.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis

from pipeline import keys

STALE_INTERVALS = 3
LABELS = {keys.BEAT_JOB: "Beat", keys.SWEEPER_JOB: "the sweeper", keys.PROBER_JOB: "the prober"}


def record_run(client: redis.Redis, job: str, at: float) -> None:
    client.set(keys.last_run(job), f"{at:.3f}")


def last_runs(client: redis.Redis) -> dict[str, float | None]:
    """Each job's last run, None for one that never ran."""
    values = client.mget([keys.last_run(job) for job in keys.JOBS])
    return {
        job: None if value is None else float(value)
        for job, value in zip(keys.JOBS, values, strict=True)
    }


def is_overdue(last: float | None, *, now: float, interval: float) -> bool:
    return last is not None and now - last > STALE_INTERVALS * interval


def overdue(runs: Mapping[str, float | None], *, now: float, interval: float) -> list[str]:
    """A sentence for each job that ran once and has been late by more than the allowance."""
    return [
        f"{LABELS[job]} last ran {now - last:.0f} s ago (every {interval:g} s expected)"
        for job, last in runs.items()
        if last is not None and is_overdue(last, now=now, interval=interval)
    ]
