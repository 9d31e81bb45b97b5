"""The log, not the broker, is the truth: publish whatever should be queued and is not.

Runs on Beat every few seconds. It finds events still `received` or `verified` and deliveries
still open past their due time plus a grace period, and publishes their next task again. That
covers a publish that failed after commit (the transactional outbox), a Redis that lost its
data, and a worker killed holding a message. Re-publishing is safe because every step claims
its row before it works and every effect is idempotent.

A lane whose queue is backed up is left alone (its messages are there, only late) unless an
item has waited far longer than any backlog should take.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import text

from pipeline import keys
from pipeline.flow import publish
from pipeline.flow.publish import is_batched, request_flush
from pipeline.keys import LANES
from pipeline.runtime import Runtime

log = logging.getLogger(__name__)

BATCH = 500
BACKLOG_THRESHOLD = 50  # messages waiting in a lane's queue
# seconds before the same item is published again, doubled at each re-publish up to the cap: an
# item that keeps failing without a verdict (a poison event) costs a message an hour, not a minute
REDISPATCH_AFTER = 60.0
MAX_REDISPATCH_AFTER = 3600.0
STALE_AFTER = 600.0  # published this long ago and still not done: publish whatever the backlog

DUE_EVENTS = text(
    """
    UPDATE events SET dispatched_at = now(), dispatches = dispatches + 1
    WHERE id IN (
        SELECT id FROM events
        WHERE status = :status AND lane = ANY(:lanes)
          AND updated_at < now() - make_interval(secs => :grace)
          AND (dispatched_at IS NULL OR dispatched_at < now() - make_interval(
                secs => least(:redispatch * power(2, greatest(dispatches - 1, 0)), :max_redispatch)))
        ORDER BY id LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, lane
    """
)
DUE_DELIVERIES = text(
    """
    UPDATE deliveries SET dispatched_at = now(), dispatches = dispatches + 1
    WHERE id IN (
        SELECT id FROM deliveries
        WHERE lane = ANY(:lanes)
          AND ((status IN ('pending', 'retrying')
                AND COALESCE(next_attempt_at, updated_at) < now() - make_interval(secs => :grace))
               OR (status = 'in_flight' AND lease_until < now()))
          AND (dispatched_at IS NULL OR dispatched_at < now() - make_interval(
                secs => least(:redispatch * power(2, greatest(dispatches - 1, 0)), :max_redispatch)))
        ORDER BY id LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, lane, destination
    """
)


@dataclass(frozen=True)
class SweepReport:
    verify: int = 0
    fetch: int = 0
    deliveries: int = 0


def sweep(rt: Runtime) -> SweepReport:
    grace = rt.config.service.redelivery_grace
    quiet = [lane for lane in LANES if queue_length(rt, lane) < BACKLOG_THRESHOLD]
    report = SweepReport(
        verify=_events(rt, "received", keys.VERIFY, quiet, grace),
        fetch=_events(rt, "verified", keys.FETCH, quiet, grace),
        deliveries=_deliveries(rt, quiet, grace),
    )
    busy = [lane for lane in LANES if lane not in quiet]
    if busy:
        # backed-up lanes: only what has been waiting far too long
        report = SweepReport(
            verify=report.verify + _events(rt, "received", keys.VERIFY, busy, STALE_AFTER),
            fetch=report.fetch + _events(rt, "verified", keys.FETCH, busy, STALE_AFTER),
            deliveries=report.deliveries + _deliveries(rt, busy, STALE_AFTER),
        )
    if report.verify or report.fetch or report.deliveries:
        log.info("sweeper re-published work", extra=report.__dict__)
    return report


def queue_length(rt: Runtime, lane: str) -> int:
    """Messages waiting in a lane; kombu's Redis transport keeps one list per priority step."""
    with rt.redis.pipeline() as pipe:
        for step in keys.PRIORITY_STEPS:
            pipe.llen(keys.priority_list(lane, step))
        return int(sum(pipe.execute()))


def _events(rt: Runtime, status: str, task: str, lanes: list[str], grace: float) -> int:
    if not lanes:
        return 0
    with rt.engine.begin() as connection:
        rows = connection.execute(
            DUE_EVENTS,
            {
                "status": status,
                "lanes": lanes,
                "grace": grace,
                "redispatch": REDISPATCH_AFTER,
                "max_redispatch": MAX_REDISPATCH_AFTER,
                "limit": BATCH,
            },
        ).all()
    items = [(row.id, row.lane) for row in rows]
    return publish.publish_many(rt.publisher, task, items, priority=keys.BACKLOG_PRIORITY)


def _deliveries(rt: Runtime, lanes: list[str], grace: float) -> int:
    if not lanes:
        return 0
    with rt.engine.begin() as connection:
        rows = connection.execute(
            DUE_DELIVERIES,
            {
                "lanes": lanes,
                "grace": grace,
                "redispatch": REDISPATCH_AFTER,
                "max_redispatch": MAX_REDISPATCH_AFTER,
                "limit": BATCH,
            },
        ).all()
    flushed: set[str] = set()
    for row in rows:
        if is_batched(rt.config, row.destination):
            if row.destination not in flushed:
                flushed.add(row.destination)
                request_flush(rt, row.destination, row.lane, countdown=0)
        else:
            rt.publisher.publish(keys.DELIVER, [row.id], row.lane, priority=keys.BACKLOG_PRIORITY)
    return len(rows)
