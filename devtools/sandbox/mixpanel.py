"""Mixpanel's Import API, emulated: `POST /import` with `strict=1`, deduplicated by `$insert_id`.

docs.mixpanel.com/reference/import-events: ≤2,000 events per request; each needs `event`,
`properties.time`, `properties.distinct_id` and `properties.$insert_id`; a 400 itemises the failed
records and imports the rest; a 429 carries no Retry-After.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from devtools.sandbox.app import sandbox_state, set_effect

blueprint = Blueprint("sandbox_mixpanel", __name__)
MAX_EVENTS = 2000
PLACEHOLDER_IDS = {
    "",
    "anon",
    "anonymous",
    "null",
    "none",
    "undefined",
    "00000000-0000-0000-0000-000000000000",
}


def error_response(status: int, message: str) -> Response:
    text = {
        429: "Project exceeded rate limits. Please retry the request with exponential backoff.",
        401: "Invalid credentials",
    }.get(status, message)
    response = jsonify(
        code=status, error=text, status="Too Many Requests" if status == 429 else "Error"
    )
    response.status_code = status
    return response


@blueprint.before_request
def _authenticate() -> Response | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic ") and base64.b64decode(header[6:]).split(b":", 1)[0]:
        return None
    return error_response(401, "Invalid credentials")


def _time_ok(stamp: Any) -> bool:
    if not isinstance(stamp, int | float):
        return False
    seconds = stamp / 1000 if stamp > 1e11 else stamp  # seconds or milliseconds, both accepted
    return 31_536_000 <= seconds <= time.time() + 3600  # after 1971, at most an hour ahead


def _problem(index: int, event: Any) -> str | None:
    if not isinstance(event, dict) or not isinstance(event.get("properties"), dict):
        return "event must be an object with properties"
    properties = event["properties"]
    checks = (
        (bool(event.get("event")), "'event' must be a non-empty string"),
        (_time_ok(properties.get("time")), "'properties.time' is missing or out of range"),
        (
            str(properties.get("distinct_id", "")).lower() not in PLACEHOLDER_IDS,
            "'properties.distinct_id' is invalid",
        ),
        (bool(properties.get("$insert_id")), "'properties.$insert_id' is required"),
    )
    return next((message for ok, message in checks if not ok), None)


@blueprint.post("/import")
def import_events() -> Response:
    events = request.get_json(silent=True)
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        return error_response(400, f"body must be a JSON array of at most {MAX_EVENTS} events")
    failed = []
    imported = 0
    for index, event in enumerate(events):
        problem = _problem(index, event)
        if problem is not None:
            failed.append(
                {
                    "index": index,
                    "insert_id": (event.get("properties") or {}).get("$insert_id")
                    if isinstance(event, dict)
                    else None,
                    "field": "properties",
                    "message": problem,
                }
            )
            continue
        imported += 1
        store = sandbox_state().store("mixpanel", "events")
        insert_id = event["properties"]["$insert_id"]
        if insert_id not in store:
            store[insert_id] = event
        set_effect("event.imported", insert_id)
    if failed:
        response = jsonify(
            code=400,
            error="some data points in the request failed validation",
            status="Bad Request",
            num_records_imported=imported,
            failed_records=failed,
        )
        response.status_code = 400
        return response
    return jsonify(code=200, num_records_imported=imported, status="OK")
