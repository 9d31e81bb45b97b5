"""Teachable's public API v1, emulated: users, enroll, unenroll, course enrollments.

Shapes from docs.teachable.com (authentication, pagination, rate limits) and api-evangelist/teachable
`openapi/teachable-{users,enrollments}-api-openapi.yml`: header `apiKey`; errors `{"message": ...}`;
lists `{"users": [...], "meta": {total, page, from, to, per_page, number_of_pages}}`; enroll and
unenroll answer 204; over the limit, 429 `{"message": "API rate limit exceeded"}` with
`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds to wait).

Control helpers (`/_sandbox/teachable/...`) do what a buyer and Teachable would do and return the
webhook Teachable would send: a one-element JSON array of `{type, id, livemode, created,
hook_event_id, object}`, unsigned (Teachable documents no signature; the URL carries the secret).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from devtools.sandbox.app import sandbox_state, set_effect

blueprint = Blueprint("sandbox_teachable", __name__)
control = Blueprint("sandbox_teachable_control", __name__)


def error_response(status: int, message: str) -> Response:
    response = jsonify(message="API rate limit exceeded" if status == 429 else message)
    response.status_code = status
    if status == 429:
        response.headers.update(
            {"RateLimit-Limit": "360", "RateLimit-Remaining": "0", "RateLimit-Reset": "1"}
        )
    return response


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _users() -> dict[int, dict[str, Any]]:
    return sandbox_state().store("teachable", "users")


def _enrollments() -> dict[tuple[int, int], dict[str, Any]]:
    return sandbox_state().store("teachable", "enrollments")


@blueprint.before_request
def _authenticate() -> Response | None:
    key = request.headers.get("apiKey")
    if key and key not in sandbox_state().store("teachable", "revoked"):
        return None
    return error_response(401, "Invalid API key")


def _meta(total: int, per: int) -> dict[str, int]:
    return {
        "total": total,
        "page": 1,
        "from": 1 if total else 0,
        "to": min(total, per),
        "per_page": per,
        "number_of_pages": max(1, -(-total // per)),
    }


def _detail(user: dict[str, Any]) -> dict[str, Any]:
    courses = [
        {
            "course_id": course,
            "course_name": f"Course {course}",
            "enrolled_at": e["enrolled_at"],
            "is_active_enrollment": e["is_active"],
            "completed_at": e["completed_at"],
            "percent_complete": e["percent_complete"],
        }
        for (user_id, course), e in _enrollments().items()
        if user_id == user["id"]
    ]
    return {**user, "courses": courses, "tags": []}


@blueprint.get("/v1/users")
def list_users() -> Response:
    email = (request.args.get("email") or "").strip().lower()
    per = min(int(request.args.get("per", 20)), 100)
    with sandbox_state().lock:
        found = [
            {"id": u["id"], "name": u["name"], "email": u["email"]}
            for u in _users().values()
            if not email or u["email"] == email
        ]
    return jsonify(users=found[:per], meta=_meta(len(found), per))


@blueprint.post("/v1/users")
def create_user() -> Response:
    body = request.get_json(silent=True) or {}
    email = str(body.get("email") or "").strip().lower()
    if "@" not in email:
        return error_response(400, "Email is invalid")
    with sandbox_state().lock:
        if any(u["email"] == email for u in _users().values()):
            return error_response(422, "Email has already been taken")
        user: dict[str, Any] = {
            "id": int(sandbox_state().new_id(numeric=True)),
            "name": body.get("name"),
            "email": email,
            "role": "student",
            "src": body.get("src"),
            "last_sign_in_ip": None,
        }
        _users()[user["id"]] = user
        detail = _detail(user)
    set_effect("user.created", email)
    response = jsonify(detail)
    response.status_code = 201
    return response


@blueprint.get("/v1/users/<int:user_id>")
def show_user(user_id: int) -> Response:
    with sandbox_state().lock:
        user = _users().get(user_id)
        return jsonify(_detail(user)) if user else error_response(404, "Not found")


def _pair() -> tuple[int, int] | Response:
    body = request.get_json(silent=True) or {}
    user_id, course_id = body.get("user_id"), body.get("course_id")
    if not isinstance(user_id, int) or not isinstance(course_id, int):
        return error_response(422, "user_id and course_id must be integers")
    if user_id not in _users():
        return error_response(404, "Not found")
    return user_id, course_id


@blueprint.post("/v1/enroll")
def enroll() -> Response:
    pair = _pair()
    if isinstance(pair, Response):
        return pair
    with sandbox_state().lock:
        existing = _enrollments().get(pair)
        _enrollments()[pair] = {
            "id": (existing or {}).get("id") or int(sandbox_state().new_id(numeric=True)),
            "enrolled_at": _now(),
            "is_active": True,
            "completed_at": None,
            "percent_complete": 0,
            "expires_at": None,
        }
    # enrolling an active student again is exactly the duplicate a retry must never cause
    kind = (
        "enrollment.reactivated" if existing and not existing["is_active"] else "enrollment.created"
    )
    suffix = f":{time.time()}" if kind == "enrollment.reactivated" else ""
    set_effect(kind, f"{pair[0]}:{pair[1]}{suffix}")
    return Response(status=204)


@blueprint.post("/v1/unenroll")
def unenroll() -> Response:
    pair = _pair()
    if isinstance(pair, Response):
        return pair
    with sandbox_state().lock:
        existing = _enrollments().get(pair)
        if existing is None or not existing["is_active"]:
            return error_response(404, "Enrollment not found")
        existing["is_active"] = False
    set_effect("enrollment.disabled", f"{pair[0]}:{pair[1]}:{time.time()}")
    return Response(status=204)


@blueprint.get("/v1/courses/<int:course_id>/enrollments")
def course_enrollments(course_id: int) -> Response:
    with sandbox_state().lock:
        found = [
            {
                "user_id": user_id,
                "enrolled_at": e["enrolled_at"],
                "expires_at": e["expires_at"],
                "completed_at": e["completed_at"],
                "percent_complete": e["percent_complete"],
            }
            for (user_id, course), e in _enrollments().items()
            if course == course_id and e["is_active"]
        ]
    return jsonify(enrollments=found, meta=_meta(len(found), 20))


# -- what a buyer and Teachable would do: the sandbox's control helpers -----------------------


def webhook(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    envelope = {
        "type": kind,
        "id": obj["id"],
        "livemode": False,
        "created": _now(),
        "hook_event_id": int(sandbox_state().new_id(numeric=True)),
        "object": obj,
    }
    body = json.dumps([envelope])
    return {"body": body, "headers": {"Content-Type": "application/json"}, "event": envelope}


def _user_ref(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "email": user["email"], "name": user["name"]}


@control.post("/sales")
def control_sale() -> Response:
    """A buyer pays for a course: user, active enrollment, paid transaction; Transaction.created."""
    spec = request.get_json(force=True)
    state, email, course = sandbox_state(), str(spec["email"]).lower(), int(spec["course_id"])
    with state.lock:
        user = next((u for u in _users().values() if u["email"] == email), None)
        if user is None:
            user = {
                "id": int(state.new_id(numeric=True)),
                "name": spec.get("name"),
                "email": email,
                "role": "student",
                "src": None,
                "last_sign_in_ip": None,
            }
            _users()[user["id"]] = user
        _enrollments()[(user["id"], course)] = {
            "id": int(state.new_id(numeric=True)),
            "enrolled_at": _now(),
            "is_active": True,
            "completed_at": None,
            "percent_complete": 0,
            "expires_at": None,
        }
        amount = int(spec.get("amount", 4900))
        transaction = {
            "id": int(state.new_id(numeric=True)),
            "user_id": user["id"],
            "pricing_plan_id": int(spec.get("pricing_plan_id", 7001)),
            "sale_id": int(state.new_id(numeric=True)),
            "created_at": _now(),
            "purchased_at": _now(),
            "charge": amount,
            "final_price": amount,
            "currency": spec.get("currency", "USD"),
            "tax_charge": 0,
            "revenue": amount,
            "status": "paid",
            "has_chargeback": False,
            "chargeback_fee": 0,
            "affiliate_id": None,
            "affiliate_fees": 0,
            "author_id": None,
            "author_fees": 0,
            "coupon_id": None,
            "refunded_at": None,
            "amount_refunded": 0,
            "user": _user_ref(user),
            "course": {"id": course, "name": f"Course {course}"},
        }
        state.store("teachable", "transactions")[transaction["id"]] = transaction
    return jsonify(webhook("Transaction.created", transaction))


@control.post("/enrollments/<int:user_id>/<int:course_id>/complete")
def control_complete(user_id: int, course_id: int) -> Response:
    with sandbox_state().lock:
        enrollment, user = _enrollments().get((user_id, course_id)), _users().get(user_id)
        if enrollment is None or user is None:
            abort(404)
        enrollment.update(completed_at=_now(), percent_complete=100)
        obj = {
            "id": enrollment["id"],
            "created_at": enrollment["enrolled_at"],
            "updated_at": _now(),
            "user_id": user_id,
            "course_id": course_id,
            "primary_course_id": course_id,
            "is_active": enrollment["is_active"],
            "enrolled_at": enrollment["enrolled_at"],
            "percent_complete": 100,
            "has_full_access": False,
            "course_progress_id": enrollment["id"],
            "certificate_serial_number": None,
            "user": _user_ref(user),
            "course": {"id": course_id, "name": f"Course {course_id}"},
        }
    return jsonify(webhook("Enrollment.completed", obj))


@control.post("/transactions/<int:transaction_id>/refund")
def control_refund(transaction_id: int) -> Response:
    with sandbox_state().lock:
        transaction = sandbox_state().store("teachable", "transactions").get(transaction_id)
        if transaction is None:
            abort(404)
        transaction.update(refunded_at=_now(), amount_refunded=transaction["final_price"])
        obj = dict(transaction)
    return jsonify(webhook("Transaction.refunded", obj))


@control.post("/keys/<key>/revoke")
def control_revoke(key: str) -> Response:
    sandbox_state().store("teachable", "revoked")[key] = True
    return jsonify(status="revoked")
