"""The periodic jobs' last runs: recorded in Redis, late only once they have run."""

from __future__ import annotations

import redis

from pipeline import keys
from pipeline.flow import liveness


def test_each_job_records_its_own_last_run(redis_url: str, clean: None) -> None:
    client = redis.Redis.from_url(redis_url)
    liveness.record_run(client, keys.SWEEPER_JOB, 1_700_000_000.25)
    assert liveness.last_runs(client) == {
        keys.BEAT_JOB: None,
        keys.SWEEPER_JOB: 1_700_000_000.25,
        keys.PROBER_JOB: None,
    }
    client.close()


def test_a_job_is_late_after_three_intervals_and_never_before_it_ran() -> None:
    runs = {keys.BEAT_JOB: 100.0, keys.SWEEPER_JOB: 84.0, keys.PROBER_JOB: None}
    assert liveness.overdue(runs, now=115.0, interval=5.0) == [
        "the sweeper last ran 31 s ago (every 5 s expected)"
    ]
    assert liveness.overdue(runs, now=99.0, interval=5.0) == []
    assert not liveness.is_overdue(None, now=1e12, interval=5.0)
