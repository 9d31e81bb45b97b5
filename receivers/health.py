"""`/healthz`: the process lives. `/readyz`: PostgreSQL and Redis answer and migrations are applied."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisError

from pipeline.log.db import pending_migrations
from receivers.errors import error_response
from receivers.state import receiver_state

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
            state.redis.ping()
        except RedisError:
            problem = "Redis does not answer"
    if problem is not None:
        return error_response(503, "not_ready", f"Not ready: {problem}.", retry_after=1)
    return jsonify(status="ready")
