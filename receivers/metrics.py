"""`GET /metrics`: this host's Prometheus scrape target (pipeline.metrics.exposition)."""

from __future__ import annotations

from flask import Blueprint, Response

from pipeline.metrics import exposition
from receivers.state import receiver_state

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    state = receiver_state()
    body = exposition.render(state.settings, state.scrape_collector)
    return Response(body, mimetype=None, content_type=exposition.CONTENT_TYPE)
