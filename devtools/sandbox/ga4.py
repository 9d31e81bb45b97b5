"""GA4 Measurement Protocol, emulated: `POST /mp/collect` and its validation server.

Like GA4, `/mp/collect` answers 204 with an empty body even when events are malformed: the
invalid ones are silently not recorded. `/debug/mp/collect` checks the same rules, records
nothing and answers 200 `{"validationMessages": [{"fieldPath", "description", "validationCode"}]}`.
Rules (developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events,
support.google.com/analytics/answer/13316687): `client_id` required; ≤ 25 events; names ≤ 40
characters of letters, digits, underscores, starting with a letter, no reserved prefix or name;
≤ 25 params with the same naming rules; string values ≤ 100 characters; `value` needs `currency`;
a timestamp at most 72 hours old. Sandbox choices where GA4's answer is not documented: a missing
`measurement_id` (or `api_secret` on `/mp/collect`; the validation server does not check it)
answers 400, and a body over 130 kB answers 413. Each recorded event is an effect keyed by
client_id, name and transaction_id (or a hash of params and timestamp), so re-sends show up.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from devtools.sandbox.app import sandbox_state, set_effect

blueprint = Blueprint("sandbox_ga4", __name__)
MAX_EVENTS = 25
MAX_PARAMS = 25
MAX_NAME = 40
MAX_VALUE = 100
MAX_BODY_BYTES = 130 * 1024
BACKDATE_SECONDS = 72 * 3600
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_")
RESERVED_NAMES = frozenset(
    {
        "ad_impression",
        "app_remove",
        "app_store_refund",
        "app_store_subscription_cancel",
        "app_store_subscription_renew",
        "click",
        "error",
        "file_download",
        "first_open",
        "first_visit",
        "form_start",
        "form_submit",
        "in_app_purchase",
        "page_view",
        "scroll",
        "session_start",
        "user_engagement",
        "view_complete",
        "video_progress",
        "video_start",
        "view_search_results",
    }
)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

Message = tuple[int | None, dict[str, str]]  # (event index or None for the whole request, message)


def error_response(status: int, message: str) -> Response:
    response = jsonify(
        error={"code": status, "message": message, "status": STATUSES.get(status, "UNKNOWN")}
    )
    response.status_code = status
    return response


def _message(path: str, description: str, code: str) -> dict[str, str]:
    return {"fieldPath": path, "description": description, "validationCode": code}


def _name_problem(name: Any, what: str, path: str, index: int) -> dict[str, str] | None:
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > MAX_NAME:
        return _message(
            path,
            f"{what} at index: [{index}] has invalid name [{name}]. Names must "
            "start with an alphabetic character and contain only alphanumeric "
            "characters and underscores.",
            "NAME_INVALID",
        )
    if name.lower().startswith(RESERVED_PREFIXES) or (what == "Event" and name in RESERVED_NAMES):
        return _message(
            path, f"{what} at index: [{index}] has reserved name [{name}].", "NAME_RESERVED"
        )
    return None


def _param_problems(index: int, params: dict[str, Any]) -> list[dict[str, str]]:
    path = f"events[{index}].params"
    found: list[dict[str, str] | None] = []
    if len(params) > MAX_PARAMS:
        found.append(
            _message(
                path,
                f"Event at index: [{index}] has more than {MAX_PARAMS} params.",
                "EXCEEDED_MAX_ENTITIES",
            )
        )
    for name, value in params.items():
        found.append(_name_problem(name, "Param", path, index))
        if isinstance(value, str) and len(value) > MAX_VALUE:
            found.append(
                _message(
                    f"{path}.{name}",
                    f"Value of param [{name}] is longer than {MAX_VALUE} characters.",
                    "VALUE_OUT_OF_BOUNDS",
                )
            )
    if "value" in params and not params.get("currency"):
        found.append(
            _message(
                f"{path}.currency",
                f"Event at index: [{index}] has a value but no currency.",
                "VALUE_REQUIRED",
            )
        )
    return [m for m in found if m is not None]


def _event_problems(index: int, event: Any, now: float) -> list[dict[str, str]]:
    if not isinstance(event, dict):
        return [_message(f"events[{index}]", "Event must be an object.", "VALUE_INVALID")]
    problem = _name_problem(event.get("name"), "Event", f"events[{index}].name", index)
    found = [problem] if problem else []
    params = event.get("params") or {}
    found += (
        _param_problems(index, params)
        if isinstance(params, dict)
        else [_message(f"events[{index}].params", "Params must be an object.", "VALUE_INVALID")]
    )
    stamp = event.get("timestamp_micros")
    if stamp is not None and not isinstance(stamp, int):
        found.append(
            _message(
                f"events[{index}].timestamp_micros",
                "Timestamp must be an integer.",
                "VALUE_INVALID",
            )
        )
    elif stamp is not None and not (now - BACKDATE_SECONDS <= stamp / 1e6 <= now + 60):
        found.append(
            _message(
                f"events[{index}].timestamp_micros",
                "Timestamp is more than 72 hours in the past or in the future.",
                "VALUE_OUT_OF_BOUNDS",
            )
        )
    return found


def validate(body: Any, now: float) -> list[Message]:
    if not isinstance(body, dict):
        return [(None, _message("", "Body must be a JSON object.", "VALUE_INVALID"))]
    events = body.get("events")
    found: list[Message] = []
    if not body.get("client_id"):
        found.append(
            (None, _message("client_id", "Measurement requires a client_id.", "VALUE_REQUIRED"))
        )
    if not isinstance(events, list) or not events:
        found.append((None, _message("events", "Measurement requires events.", "VALUE_REQUIRED")))
    elif len(events) > MAX_EVENTS:
        found.append(
            (
                None,
                _message(
                    "events",
                    f"A measurement may have at most {MAX_EVENTS} events.",
                    "EXCEEDED_MAX_ENTITIES",
                ),
            )
        )
    else:
        for index, event in enumerate(events):
            found += [(index, m) for m in _event_problems(index, event, now)]
    return found


def _refused(*, needs_secret: bool) -> Response | None:
    if not request.args.get("measurement_id") or (
        needs_secret and not request.args.get("api_secret")
    ):
        return error_response(400, "measurement_id and api_secret are required query parameters")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return error_response(413, "The request body is larger than 130 kB.")
    return None


def _effect_key(client_id: str, event: dict[str, Any]) -> str:
    params = event.get("params") or {}
    if params.get("transaction_id"):
        return f"{client_id}|{event['name']}|{params['transaction_id']}"
    material = json.dumps([params, event.get("timestamp_micros")], sort_keys=True).encode()
    return f"{client_id}|{event['name']}|{hashlib.sha256(material).hexdigest()[:16]}"


@blueprint.post("/mp/collect")
def collect() -> Response:
    refused = _refused(needs_secret=True)
    if refused is not None:
        return refused
    body = request.get_json(silent=True)
    messages = validate(body, time.time())
    if any(index is None for index, _ in messages) or not isinstance(body, dict):
        return Response(status=204)  # GA4 drops it without a word
    invalid = {index for index, _ in messages}
    store = sandbox_state().store("ga4", "events")
    for index, event in enumerate(body["events"]):
        if index in invalid:
            continue
        key = _effect_key(str(body["client_id"]), event)
        store.setdefault(
            key,
            {
                "client_id": body["client_id"],
                "user_id": body.get("user_id"),
                "measurement_id": request.args["measurement_id"],
                **event,
            },
        )
        set_effect("event.recorded", key)
    return Response(status=204)


@blueprint.post("/debug/mp/collect")
def debug_collect() -> Response:
    refused = _refused(needs_secret=False)
    if refused is not None:
        return refused
    messages = validate(request.get_json(silent=True), time.time())
    return jsonify(validationMessages=[message for _, message in messages])
