"""One trace id per request, bound to every log line the request writes and stored on its event.

A caller's W3C `traceparent` trace id is kept when it is well formed, so a trace started upstream
continues here; otherwise a new one is drawn. Workers bind the stored id again (see
`pipeline.logging.bind_event`), so one id follows an event from the receiver through every task.
"""

from __future__ import annotations

import re
import secrets

from flask import Flask, Response, g, request

from pipeline import logging as pipeline_logging

HEADER = "X-Stackwire-Trace-Id"
# version-traceid-parentid-flags; an all-zero trace id is invalid (w3.org/TR/trace-context)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def trace_id_for(traceparent: str | None) -> str:
    match = _TRACEPARENT.match((traceparent or "").strip().lower())
    if match and match.group(1) != "0" * 32:
        return match.group(1)
    return secrets.token_hex(16)


def current_trace_id() -> str | None:
    return g.get("trace_id")


def install(app: Flask) -> None:
    @app.before_request
    def _start_trace() -> None:
        g.trace_id = trace_id_for(request.headers.get("traceparent"))
        pipeline_logging.bind(trace_id=g.trace_id)

    @app.after_request
    def _answer_trace(response: Response) -> Response:
        if "trace_id" in g:
            response.headers[HEADER] = g.trace_id
        return response

    @app.teardown_request
    def _end_trace(_: BaseException | None) -> None:
        # a gthread worker serves the next request on this thread: nothing carries over
        pipeline_logging.clear()
