"""`/healthz`: the process lives. `/readyz`: PostgreSQL and Redis answer, migrations are applied,
and the periodic jobs (Beat, the sweeper, the prober) have not stopped."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisError

from pipeline.flow import liveness
from pipeline.log.db import pending_migrations
from receivers.errors import error_response
from receivers.state import ReceiverState, receiver_state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    state = receiver_state()
    problem = pending_migrations(state.engine, state.settings)
    if problem is None:
        try:
            problem = stalled_jobs(state)
        except RedisError:
            problem = "Redis does not answer"
    if problem is not None:
        return error_response(503, "not_ready", f"Not ready: {problem}.", retry_after=1)
    return jsonify(status="ready")


def stalled_jobs(state: ReceiverState) -> str | None:
    """Which periodic jobs stopped. Nothing is late in our first few intervals: records Redis
    kept from a previous run get the time to be renewed."""
    runs = liveness.last_runs(state.redis)
    now, interval = state.clock(), state.settings.sweep_seconds
    if not liveness.is_overdue(state.started_at, now=now, interval=interval):
        return None
    return "; ".join(liveness.overdue(runs, now=now, interval=interval)) or None
