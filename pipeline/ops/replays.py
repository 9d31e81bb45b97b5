"""Bulk replay as plan, then execute: see what a replay would do before anything is done.

`plan` freezes the matched set into `replay_items` (what arrives later is not in it) and answers
the count, the counts by destination and failure class, sample ids, the provider calls it will
make and how long today's rate limits make it take; nothing else happens. `execute` (once: a
second call is a no-op) hands the plan to the maintenance queue, where `run_chunk` works through
it in chunks, through the normal lanes and rate budgets. Every item goes through the ledger:
a delivery is re-opened with its own idempotency key, so an action already delivered is skipped
(and counted) unless the plan says `force`, and then it is sent again under the same key.

Modes: `resume` re-runs each open dead letter from its failed step; `redeliver` sends the same
actions again; `reroute` plans the events against today's flows (only actions not planned yet);
`refetch` (one event, `POST /api/events/{id}/replay` from `fetch`) fetches the object again.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, text

from pipeline import keys
from pipeline.delivery.deadletter import replay as replay_dead_letter
from pipeline.errors import PlanNotFound, PlanRefused
from pipeline.flow.planning import plan_deliveries
from pipeline.flow.publish import publish_deliveries
from pipeline.log.events import add_step, load_event
from pipeline.log.models import EventStatus
from pipeline.ops import audit
from pipeline.ops.handles import handle_key
from pipeline.ops.search import EventQuery, dead_letter_sql, matched_events_sql, narrowed
from pipeline.runtime import Runtime

MODES = ("resume", "redeliver", "reroute", "refetch")
MAX_ITEMS = 100_000
CHUNK = 100
SAMPLES = 10


@dataclass(frozen=True)
class Selection:
    sql: str
    params: dict[str, Any]


def plan(rt: Runtime, query: EventQuery, *, mode: str, force: bool, actor: str) -> dict[str, Any]:
    """Freezes what `query` matches for `mode` and answers the plan; changes nothing else."""
    if mode not in MODES:
        raise PlanRefused("bad_mode", f"mode must be one of {', '.join(MODES)}.")
    plan_id = "rp_" + secrets.token_hex(8)
    selection = _selection(query, mode, handle_key(rt.settings))
    with rt.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO replay_plans (id, created_by, mode, filters, force, count, summary) "
                "VALUES (:id, :actor, :mode, CAST(:filters AS jsonb), :force, 0, '{}')"
            ),
            {
                "id": plan_id,
                "actor": actor,
                "mode": mode,
                "filters": _json(query.filters()),
                "force": force,
            },
        )
        connection.execute(text(selection.sql), {**selection.params, "plan_id": plan_id})
        summary = _summary(connection, rt, plan_id)
        if summary["count"] > MAX_ITEMS:
            raise PlanRefused(
                "plan_too_large",
                f"The filter matches more than {MAX_ITEMS} items; narrow it (since/until, source).",
            )
        connection.execute(
            text(
                "UPDATE replay_plans SET count = :count, summary = CAST(:summary AS jsonb) "
                "WHERE id = :id"
            ),
            {"id": plan_id, "count": summary["count"], "summary": _json(summary)},
        )
        audit.record(
            connection,
            actor=actor,
            action="replay.plan",
            plan_id=plan_id,
            event_ids=_event_ids(connection, plan_id),
            counts={"count": summary["count"], "mode": mode},
        )
    return {"plan_id": plan_id, "mode": mode, "force": force, "status": "planned", **summary}


def _selection(query: EventQuery, mode: str, key: bytes) -> Selection:
    columns = "plan_id, position, event_id, delivery_id, dead_letter_id, destination, failure_class"
    if mode == "resume":
        if not query.dead_letter_ids and query.status is None:
            query = _with(query, status="open")
        prefix, body, params = dead_letter_sql(query, key)
        select = (
            "SELECT :plan_id, row_number() OVER (ORDER BY d.id), d.event_id, d.delivery_id, "
            "d.id, dl.destination, d.failure_class "
        )
        order = "d.id"
    elif mode == "redeliver":
        prefix, body, params = _deliveries_sql(query, key)
        select = (
            "SELECT :plan_id, row_number() OVER (ORDER BY dl.id), e.id, dl.id, NULL, "
            "dl.destination, NULL "
        )
        order = "dl.id"
    else:
        prefix, body, params = matched_events_sql(query, key)
        if query.status:
            body = narrowed(body, ["e.status = :status"])
            params["status"] = query.status
        select = "SELECT :plan_id, row_number() OVER (ORDER BY e.id), e.id, NULL, NULL, NULL, NULL "
        order = "e.id"
    params["max_items"] = MAX_ITEMS + 1
    sql = f"{prefix}INSERT INTO replay_items ({columns}) {select}{body} ORDER BY {order} LIMIT :max_items"
    return Selection(sql, params)


def _deliveries_sql(query: EventQuery, key: bytes) -> tuple[str, str, dict[str, Any]]:
    prefix, body, params = matched_events_sql(_with(query, dead_letter_ids=()), key)
    body = body.replace(
        "FROM events e", "FROM events e JOIN deliveries dl ON dl.event_id = e.id", 1
    )
    conditions = []
    if query.status:
        conditions.append("e.status = :status")
        params["status"] = query.status
    if query.destination:
        conditions.append("dl.destination = :destination")
        params["destination"] = query.destination
    if query.failure_class:
        conditions.append(
            "EXISTS (SELECT 1 FROM dead_letters x WHERE x.delivery_id = dl.id "
            "AND x.failure_class = :failure_class)"
        )
        params["failure_class"] = query.failure_class
    if query.dead_letter_ids:
        conditions.append(
            "dl.id IN (SELECT delivery_id FROM dead_letters WHERE id = ANY(:dead_letter_ids))"
        )
        params["dead_letter_ids"] = list(query.dead_letter_ids)
    body = narrowed(body, conditions)
    return prefix, body, params


def _with(query: EventQuery, **changes: Any) -> EventQuery:
    return replace(query, **changes)


def _summary(connection: Connection, rt: Runtime, plan_id: str) -> dict[str, Any]:
    groups = connection.execute(
        text(
            "SELECT destination, failure_class, count(*) AS n FROM replay_items "
            "WHERE plan_id = :id GROUP BY destination, failure_class"
        ),
        {"id": plan_id},
    ).all()
    by_destination: dict[str, int] = {}
    by_failure_class: dict[str, int] = {}
    for row in groups:
        by_destination[row.destination or "(event)"] = (
            by_destination.get(row.destination or "(event)", 0) + row.n
        )
        if row.failure_class:
            by_failure_class[row.failure_class] = by_failure_class.get(row.failure_class, 0) + row.n
    samples: Any = connection.execute(
        text("SELECT event_id FROM replay_items WHERE plan_id = :id ORDER BY position LIMIT :n"),
        {"id": plan_id, "n": SAMPLES * 4},
    ).scalars()
    calls, seconds = _estimate(rt, by_destination)
    return {
        "count": sum(by_destination.values()),
        "by_destination": by_destination,
        "by_failure_class": by_failure_class,
        "sample_event_ids": [int(s) for s in dict.fromkeys(samples)][:SAMPLES],
        "provider_calls": calls,
        "estimated_seconds": seconds,
    }


def _estimate(rt: Runtime, by_destination: dict[str, int]) -> tuple[dict[str, int], float]:
    """Calls per destination at most, and the time the slowest destination's rate limit needs
    for its calls (destinations are served in parallel); an unknown one counts one call each."""
    calls: dict[str, int] = {}
    seconds = 0.0
    for name, count in by_destination.items():
        destination = rt.config.destinations.get(name)
        per_action = destination.provider.calls_per_action if destination else 1
        calls[name] = count * per_action
        if destination and destination.rate_limit:
            seconds = max(seconds, calls[name] / destination.rate_limit)
    return calls, round(seconds, 1)


def _event_ids(connection: Connection, plan_id: str) -> list[int]:
    return list(
        connection.execute(
            text("SELECT DISTINCT event_id FROM replay_items WHERE plan_id = :id LIMIT 10000"),
            {"id": plan_id},
        ).scalars()
    )


def execute(rt: Runtime, plan_id: str, *, reason: str, actor: str) -> dict[str, Any]:
    """Starts the plan in the background; a plan already started or finished is left alone."""
    with rt.engine.begin() as connection:
        started = connection.execute(
            text(
                "UPDATE replay_plans SET status = 'running', reason = :reason, "
                "executed_by = :actor, executed_at = now() "
                "WHERE id = :id AND status = 'planned' RETURNING count"
            ),
            {"id": plan_id, "reason": reason, "actor": actor},
        ).first()
        if started is None:
            current = progress(connection, plan_id, items=0)
            # recorded too: who tried to run it again, and that nothing happened
            audit.record(
                connection,
                actor=actor,
                action="replay.execute",
                reason=reason,
                plan_id=plan_id,
                counts={"count": 0, "noop": True, "plan_status": current["status"]},
            )
            return {**current, "already": True}
        audit.record(
            connection,
            actor=actor,
            action="replay.execute",
            reason=reason,
            plan_id=plan_id,
            event_ids=_event_ids(connection, plan_id),
            counts={"count": started.count},
        )
    rt.publisher.publish(keys.RUN_REPLAY, [plan_id], keys.MAINTENANCE)
    with rt.autocommit.connect() as connection:
        return {**progress(connection, plan_id, items=0), "already": False}


def cancel(rt: Runtime, plan_id: str, *, actor: str) -> dict[str, Any]:
    with rt.engine.begin() as connection:
        stopped = connection.execute(
            text(
                "UPDATE replay_plans SET status = 'cancelled', finished_at = now() "
                "WHERE id = :id AND status IN ('planned', 'running') RETURNING id"
            ),
            {"id": plan_id},
        ).first()
        if stopped is not None:
            cancelled = connection.execute(
                text(
                    "UPDATE replay_items SET status = 'cancelled', done_at = now() "
                    "WHERE plan_id = :id AND status = 'pending'"
                ),
                {"id": plan_id},
            ).rowcount
            audit.record(
                connection,
                actor=actor,
                action="replay.cancel",
                plan_id=plan_id,
                counts={"cancelled": cancelled},
            )
        return progress(connection, plan_id, items=0)


def progress(connection: Connection, plan_id: str, *, items: int = 200) -> dict[str, Any]:
    row = (
        connection.execute(
            text(
                "SELECT id, mode, force, status, count, summary, filters, reason, created_by, "
                "created_at, executed_by, executed_at, finished_at FROM replay_plans WHERE id = :id"
            ),
            {"id": plan_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise PlanNotFound(plan_id)
    by_status: dict[str, int] = dict(
        connection.execute(
            text("SELECT status, count(*) FROM replay_items WHERE plan_id = :id GROUP BY status"),
            {"id": plan_id},
        ).all()
    )
    by_outcome: dict[str, int] = dict(
        connection.execute(
            text(
                "SELECT outcome, count(*) FROM replay_items WHERE plan_id = :id "
                "AND outcome IS NOT NULL GROUP BY outcome"
            ),
            {"id": plan_id},
        ).all()
    )
    listed = connection.execute(
        text(
            "SELECT position, event_id, delivery_id, dead_letter_id, destination, status, "
            "outcome, done_at FROM replay_items WHERE plan_id = :id ORDER BY position LIMIT :n"
        ),
        {"id": plan_id, "n": items},
    ).mappings()
    summary = row["summary"] or {}
    return {
        "plan_id": row["id"],
        "mode": row["mode"],
        "force": row["force"],
        "status": row["status"],
        "count": row["count"],
        "filters": row["filters"],
        "reason": row["reason"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "executed_by": row["executed_by"],
        "executed_at": row["executed_at"],
        "finished_at": row["finished_at"],
        "by_destination": summary.get("by_destination", {}),
        "by_failure_class": summary.get("by_failure_class", {}),
        "sample_event_ids": summary.get("sample_event_ids", []),
        "provider_calls": summary.get("provider_calls", {}),
        "estimated_seconds": summary.get("estimated_seconds", 0.0),
        "done": sum(n for status, n in by_status.items() if status != "pending"),
        "by_status": by_status,
        "by_outcome": by_outcome,
        "items": [dict(item) for item in listed],
    }


def run_chunk(rt: Runtime, plan_id: str, *, size: int = CHUNK) -> bool:
    """Works through up to `size` pending items; True while more remain.

    The items stay locked until their chunk commits. A worker killed mid-chunk leaves them
    pending: the next run does them again, and the ledger makes that harmless (a delivery
    re-opened twice is sent once; one already delivered is skipped).
    """
    with rt.engine.begin() as connection:
        header = connection.execute(
            text("SELECT mode, force, status FROM replay_plans WHERE id = :id"), {"id": plan_id}
        ).first()
        if header is None or header.status != "running":
            return False
        items = connection.execute(
            text(
                "SELECT position, event_id, delivery_id, dead_letter_id FROM replay_items "
                "WHERE plan_id = :id AND status = 'pending' ORDER BY position LIMIT :n "
                "FOR UPDATE SKIP LOCKED"
            ),
            {"id": plan_id, "n": size},
        ).all()
        for item in items:
            status, outcome = _run_item(rt, header.mode, header.force, item)
            connection.execute(
                text(
                    "UPDATE replay_items SET status = :status, outcome = :outcome, "
                    "done_at = now() WHERE plan_id = :id AND position = :position"
                ),
                {"id": plan_id, "position": item.position, "status": status, "outcome": outcome},
            )
        remaining: int = connection.execute(
            text(
                "SELECT count(*) FROM replay_items WHERE plan_id = :id AND status = 'pending' "
                "AND NOT (position = ANY(:done))"
            ),
            {"id": plan_id, "done": [item.position for item in items]},
        ).scalar_one()
        if remaining == 0:
            connection.execute(
                text(
                    "UPDATE replay_plans SET status = 'done', finished_at = now() "
                    "WHERE id = :id AND status = 'running'"
                ),
                {"id": plan_id},
            )
    return bool(remaining)


def _run_item(rt: Runtime, mode: str, force: bool, item: Any) -> tuple[str, str]:
    if mode == "resume":
        outcome = replay_dead_letter(rt, int(item.dead_letter_id)).outcome
        if outcome == "already_delivered" and force and item.delivery_id is not None:
            return _status(redeliver(rt, int(item.delivery_id), force=True))
        return _status(outcome)
    if mode == "redeliver":
        return _status(redeliver(rt, int(item.delivery_id), force=force))
    if mode == "refetch":
        return _status(refetch(rt, int(item.event_id)))
    return _status(reroute(rt, int(item.event_id)))


DONE_OUTCOMES = ("replayed", "redelivered", "refetched", "planned")


def _status(outcome: str) -> tuple[str, str]:
    return ("done" if outcome.split(":", 1)[0] in DONE_OUTCOMES else "skipped"), outcome


REOPEN = text(
    """
    UPDATE deliveries SET status = 'pending', window_started_at = now(), next_attempt_at = NULL,
        lease_until = NULL, updated_at = now()
    WHERE id = :id AND (status = 'dead' OR (status = 'delivered' AND :force))
    RETURNING event_id, lane, destination, status
    """
)


def redeliver(rt: Runtime, delivery_id: int, *, force: bool) -> str:
    """The same action again under its own idempotency key: a dead one re-opened; a delivered
    one only with `force`; one still on its way is left to finish."""
    with rt.engine.begin() as connection:
        row = connection.execute(REOPEN, {"id": delivery_id, "force": force}).first()
        if row is None:
            status = connection.execute(
                text("SELECT status FROM deliveries WHERE id = :id"), {"id": delivery_id}
            ).scalar()
            return {
                "delivered": "already_delivered",
                "cancelled": "cancelled",
                None: "not_found",
            }.get(status, "in_progress")
        connection.execute(
            text(
                "UPDATE dead_letters SET status = 'replayed', replayed_at = now(), "
                "replay_count = replay_count + 1 WHERE delivery_id = :id AND status = 'open'"
            ),
            {"id": delivery_id},
        )
        add_step(
            connection,
            int(row.event_id),
            "replay",
            "requested",
            detail={"delivery": delivery_id, "mode": "redeliver", "force": force},
        )
    publish_deliveries(rt, [(delivery_id, row.lane, row.destination)])
    return "redelivered"


def refetch(rt: Runtime, event_id: int) -> str:
    """The event's object fetched again and processed: actions not planned yet are planned; the
    ones planned before keep their keys (nothing is done twice)."""
    with rt.engine.begin() as connection:
        row = connection.execute(
            text(
                # only events that passed verify: a failed one is resumed from its dead letter,
                # so its checks (a PayPal postback, a contract) run again
                "UPDATE events SET status = 'verified', reason = NULL, replays = replays + 1, "
                "updated_at = now() WHERE id = :id AND status IN ('processed', 'waiting') "
                "RETURNING lane"
            ),
            {"id": event_id},
        ).first()
        if row is None:
            return "not_replayable"
        add_step(connection, event_id, "replay", "requested", detail={"from": "fetch"})
    rt.publisher.publish(keys.FETCH, [event_id], row.lane)
    return "refetched"


def reroute(rt: Runtime, event_id: int) -> str:
    """The event's canonical form planned against today's flows: only new actions are added."""
    with rt.engine.begin() as connection:
        event = load_event(connection, event_id)
        canonical = connection.execute(
            text("SELECT canonical FROM events WHERE id = :id AND status = :processed"),
            {"id": event_id, "processed": EventStatus.PROCESSED},
        ).scalar()
        if event is None or canonical is None:
            return "not_processed"
        planned = plan_deliveries(connection, rt.config, event, canonical)
    publish_deliveries(rt, planned)
    return f"planned:{len(planned)}" if planned else "nothing_new"


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


STALLED = text(
    """
    SELECT p.id FROM replay_plans p
    WHERE p.status = 'running'
      AND EXISTS (SELECT 1 FROM replay_items i WHERE i.plan_id = p.id AND i.status = 'pending')
      AND greatest(p.executed_at, (SELECT max(done_at) FROM replay_items i WHERE i.plan_id = p.id))
          < now() - make_interval(secs => :quiet)
    """
)


def resume_stalled(rt: Runtime, *, quiet: float = 60.0) -> list[str]:
    """Publishes a chunk for every running plan that made no progress for `quiet` seconds.
    A duplicate chunk is harmless: items are taken with SKIP LOCKED and run through the ledger."""
    with rt.autocommit.connect() as connection:
        stalled: list[str] = list(connection.execute(STALLED, {"quiet": quiet}).scalars())
    for plan_id in stalled:
        rt.publisher.publish(keys.RUN_REPLAY, [plan_id], keys.MAINTENANCE)
    return stalled


def continue_plan(rt: Runtime, plan_id: str) -> bool:
    """One chunk, and the next one queued while items remain; True while it goes on."""
    more = run_chunk(rt, plan_id)
    if more:
        rt.publisher.publish(keys.RUN_REPLAY, [plan_id], keys.MAINTENANCE)
    return more
