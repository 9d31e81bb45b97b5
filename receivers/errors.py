"""Every error the edge returns is JSON: a machine code and one human sentence, nothing else.

No stack trace, secret or echo of the payload ever reaches a response or the log. Every refusal
(4xx) is logged with its source and machine code only, so a provider stuck on a 400 is seen.
"""

from __future__ import annotations

import logging
import traceback

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: ("bad_request", "The request could not be read."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    413: ("body_too_large", "The request body is larger than this source accepts."),
    415: ("unsupported_media_type", "This source does not accept that content type."),
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        outcome: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        # what the refused request was after all, when it was kept (`quarantined`, `duplicate`)
        self.outcome = outcome


def error_response(
    status: int, code: str, message: str, retry_after: int | None = None
) -> Response:
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        _log_refusal(exc.status, exc.code)
        return error_response(exc.status, exc.code, exc.message, exc.retry_after)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code, message = _HTTP_CODES.get(status, ("http_error", "The request was refused."))
        _log_refusal(status, code)
        return error_response(status, code, message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # the type and the place, never the message: it may hold payload data
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f"{frame.filename}:{frame.lineno}" if frame else "?"
        log.error(
            "unexpected error in the receiver", extra={"error": type(exc).__name__, "at": where}
        )
        return error_response(500, "internal_error", "Stackwire could not handle this request.")


MAX_LOGGED_NAME = 64


def _log_refusal(status: int, code: str) -> None:
    """One line per 4xx: the source named in the URL (trimmed: anyone may send any name), the
    status and the machine code; never the body, a header or the query (it holds URL secrets)."""
    if not 400 <= status < 500:
        return
    source = str((request.view_args or {}).get("source_name", ""))[:MAX_LOGGED_NAME]
    what = "an admin API request" if request.path.startswith("/api/") else "a webhook request"
    log.warning(
        f"refused {what}",
        extra={"source": source or None, "status": status, "code": code},
    )
