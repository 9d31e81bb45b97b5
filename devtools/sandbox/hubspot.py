"""HubSpot CRM, emulated: contacts batch upsert by e-mail, Bearer auth, rate-limit answers.

`POST /crm/v3/objects/contacts/batch/upsert` (and the dated `/crm/objects/<YYYY-MM>/contacts/...`).
Bodies follow HubSpot's: errors `{"status": "error", "message", "correlationId", "category",
"context"?}`; 401 `INVALID_AUTHENTICATION`; more than 100 inputs or a repeated id refuse the whole
request (400 `VALIDATION_ERROR`); an invalid input refuses the whole request too unless every input
carries an `objectWriteTraceId`, then the valid ones are written and the answer is a 207 with
`errors[]` naming the failed trace ids and `numErrors`. E-mails are stored lower-cased. Every
answer carries `X-HubSpot-RateLimit-*` headers; past the rolling 10-second or the daily quota
(set with `PUT /_sandbox/hubspot/limits`) it answers 429 with `policyName` and no Retry-After.
Known properties are HubSpot's default contact properties; others are `PROPERTY_DOESNT_EXIST`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, cast

from flask import Blueprint, Response, g, jsonify, request

from devtools.sandbox.app import sandbox_state, set_effect

blueprint = Blueprint("sandbox_hubspot", __name__)
control = Blueprint("sandbox_hubspot_control", __name__)
MAX_INPUTS = 100
WINDOW_MS = 10_000
DEFAULT_LIMITS = {"ten_secondly": 190, "daily": 1_000_000}
PROPERTIES = frozenset(
    {
        "email",
        "firstname",
        "lastname",
        "phone",
        "mobilephone",
        "company",
        "jobtitle",
        "website",
        "address",
        "city",
        "state",
        "zip",
        "country",
        "hs_timezone",
        "hs_language",
        "lifecyclestage",
        "hs_lead_status",
        "hubspot_owner_id",
        "message",
    }
)
LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
LIMIT_MESSAGES = {
    "DAILY": "You have reached your daily limit.",
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
}
CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    429: "RATE_LIMITS",
}


def error_response(status: int, message: str, **extra: Any) -> Response:
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
    }
    if status == 429:  # HubSpot's rate-limit body names the policy that was hit
        policy = extra.pop("policyName", "TEN_SECONDLY_ROLLING")
        body.update(message=LIMIT_MESSAGES[policy], errorType="RATE_LIMIT", policyName=policy)
    elif status in CATEGORIES:
        body["category"] = CATEGORIES[status]
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    return response


def _limits() -> dict[str, int]:
    found: dict[str, int] = sandbox_state().store("hubspot", "limits")
    return {**DEFAULT_LIMITS, **found}


@blueprint.before_request
def _authenticate_and_count() -> Response | None:
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else ""
    if not token.startswith("pat-") or token in sandbox_state().store("hubspot", "revoked"):
        return error_response(401, AUTH_MESSAGE)
    now, limits = time.time(), _limits()
    with sandbox_state().lock:
        usage = sandbox_state().store("hubspot", "usage")
        window = [t for t in usage.get("window", []) if now - t < WINDOW_MS / 1000]
        daily = int(usage.get("daily", 0))
        policy = (
            "DAILY"
            if daily >= limits["daily"]
            else "TEN_SECONDLY_ROLLING"
            if len(window) >= limits["ten_secondly"]
            else None
        )
        if policy is None:
            window.append(now)
            daily += 1
        usage.update(window=window, daily=daily)
    g.hubspot_usage = (len(window), daily)
    if policy is not None:
        return error_response(429, "", policyName=policy)
    return None


@blueprint.after_request
def _rate_headers(response: Response) -> Response:
    used, daily = g.get("hubspot_usage", (0, 0))
    limits = _limits()
    response.headers.update(
        {
            "X-HubSpot-RateLimit-Max": str(limits["ten_secondly"]),
            "X-HubSpot-RateLimit-Remaining": str(max(limits["ten_secondly"] - used, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(WINDOW_MS),
            "X-HubSpot-RateLimit-Daily": str(limits["daily"]),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(limits["daily"] - daily, 0)),
        }
    )
    return response


def _invalid(name: str, value: Any, code: str, message: str) -> dict[str, Any]:
    return {
        "isValid": False,
        "message": message,
        "error": code,
        "name": name,
        "localizedErrorMessage": message,
        "propertyValue": value,
    }


def _problems(item: dict[str, Any]) -> list[dict[str, Any]]:
    properties = item.get("properties") or {}
    known = PROPERTIES | set(sandbox_state().store("hubspot", "custom_properties"))
    found = [
        _invalid(n, v, "PROPERTY_DOESNT_EXIST", f'Property "{n}" does not exist')
        for n, v in properties.items()
        if n not in known
    ]
    email = str(properties.get("email") or item.get("id") or "")
    if not _EMAIL.match(email):
        found.append(_invalid("email", email, "INVALID_EMAIL", f"Email address {email} is invalid"))
    stage = properties.get("lifecyclestage")
    if stage is not None and stage not in LIFECYCLE_STAGES:
        found.append(
            _invalid(
                "lifecyclestage",
                stage,
                "INVALID_OPTION",
                f"{stage} was not one of the allowed options",
            )
        )
    return found


def _validation_error(problems: list[dict[str, Any]], trace: str | None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Property values were not valid: " + json.dumps(problems),
        "errors": [
            {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
            for p in problems
        ],
    }
    if trace is not None:
        error["context"] = {"objectWriteTraceId": [trace]}
    return error


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _upsert(item: dict[str, Any]) -> dict[str, Any]:
    contacts = sandbox_state().store("hubspot", "contacts")
    email = str(item["id"]).strip().lower()
    properties = {k: str(v) for k, v in (item.get("properties") or {}).items()}
    properties["email"] = email
    with sandbox_state().lock:
        found = contacts.get(email)
        created = found is None
        if found is None:
            found = {
                "id": str(sandbox_state().new_id(numeric=True)),
                "properties": {},
                "createdAt": _stamp(),
                "updates": 0,
            }
            contacts[email] = found
        found["properties"].update(properties)
        found["updatedAt"] = _stamp()
        found["updates"] += 0 if created else 1
        updates = found["updates"]
    if created:
        set_effect("contact.created", email)
    else:  # each update is its own effect: a person buying twice is updated twice, legitimately
        set_effect("contact.updated", f"{email}:{updates}")
    result = {
        "id": found["id"],
        "properties": dict(sorted(found["properties"].items())),
        "createdAt": found["createdAt"],
        "updatedAt": found["updatedAt"],
        "archived": False,
        "new": created,
    }
    if item.get("objectWriteTraceId") is not None:
        result["objectWriteTraceId"] = item["objectWriteTraceId"]
    return result


def _refusal(inputs: Any) -> Response | None:
    """What refuses the request as a whole, before anything is written."""
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        return error_response(400, "Invalid input JSON: inputs must be a list of objects")
    if len(inputs) > MAX_INPUTS:
        return error_response(
            400,
            f"The maximum number of inputs supported in a batch request "
            f"is {MAX_INPUTS}. Please reduce the number of items and try again",
        )
    if any(i.get("idProperty") != "email" or not i.get("id") for i in inputs):
        return error_response(400, "Invalid input JSON: each input needs id and idProperty 'email'")
    ids = [str(i["id"]).strip().lower() for i in inputs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        return error_response(
            400,
            f"Duplicate IDs found in batch input: [{', '.join(repeated)}]. IDs must be unique",
            context={"ids": repeated},
        )
    return None


@blueprint.post("/crm/v3/objects/contacts/batch/upsert")
@blueprint.post("/crm/objects/<version>/contacts/batch/upsert")
def batch_upsert(version: str = "v3") -> Response:
    body = request.get_json(silent=True)
    refused = _refusal(body.get("inputs") if isinstance(body, dict) else None)
    if refused is not None:
        return refused
    inputs = cast("list[dict[str, Any]]", cast("dict[str, Any]", body)["inputs"])
    traced = all(i.get("objectWriteTraceId") is not None for i in inputs)
    problems = [(item, _problems(item)) for item in inputs]
    errors = [
        _validation_error(p, item.get("objectWriteTraceId") if traced else None)
        for item, p in problems
        if p
    ]
    if errors and not traced:
        response = jsonify({**errors[0], "correlationId": str(uuid.uuid4())})
        response.status_code = 400
        return response
    started = _stamp()
    results = [_upsert(item) for item, p in problems if not p]
    answer: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "requestedAt": started,
        "startedAt": started,
        "completedAt": _stamp(),
        "links": {},
    }
    if errors:
        answer.update(numErrors=len(errors), errors=errors)
    response = jsonify(answer)
    response.status_code = 207 if errors else 200
    return response


@control.put("/limits")
def set_limits() -> Response:
    """`{"ten_secondly": n, "daily": n}`; `{"daily_used": n}` sets today's count (0 resets)."""
    spec: dict[str, Any] = request.get_json(force=True) or {}
    with sandbox_state().lock:
        limits = sandbox_state().store("hubspot", "limits")
        limits.update({k: int(v) for k, v in spec.items() if k in DEFAULT_LIMITS})
        if "daily_used" in spec:
            sandbox_state().store("hubspot", "usage")["daily"] = int(spec["daily_used"])
    return jsonify(limits=_limits())


@control.post("/properties/<name>")
def add_property(name: str) -> Response:
    sandbox_state().store("hubspot", "custom_properties")[name] = True
    return jsonify(status="created", name=name)


@control.post("/tokens/<token>/revoke")
def revoke(token: str) -> Response:
    sandbox_state().store("hubspot", "revoked")[token] = True
    return jsonify(status="revoked")


@control.get("/contacts")
def contacts() -> Response:
    return jsonify(contacts=sandbox_state().store("hubspot", "contacts"))
