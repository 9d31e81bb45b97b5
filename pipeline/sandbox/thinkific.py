"""Thinkific's public API v1, emulated: users and enrollments (api-evangelist/thinkific OpenAPI).

Auth: `X-Auth-API-Key` + `X-Auth-Subdomain`, or `Authorization: Bearer`. Lists answer
`{"items": [...], "meta": {"pagination": {...}}}`; validation errors are 422 `{"errors": {...}}`;
a missing record is 404 `{"error": "Record not found."}`; over the limit, 429.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from pipeline.sandbox.app import sandbox_state, set_effect

blueprint = Blueprint("sandbox_thinkific", __name__)
PREFIX = "/api/public/v1"


def error_response(status: int, message: str) -> Response:
    body: dict[str, Any] = {"error": message}
    if status == 429:
        body = {"error": "Too Many Requests"}
    response = jsonify(body)
    response.status_code = status
    if status == 429:
        response.headers["RateLimit-Reset"] = str(int(time.time()) + 1)
    return response


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _users() -> dict[int, dict[str, Any]]:
    return sandbox_state().store("thinkific", "users")


def _enrollments() -> dict[int, dict[str, Any]]:
    return sandbox_state().store("thinkific", "enrollments")


@blueprint.before_request
def _authenticate() -> Response | None:
    bearer = request.headers.get("Authorization", "").startswith("Bearer ")
    key, site = request.headers.get("X-Auth-API-Key"), request.headers.get("X-Auth-Subdomain")
    if bearer or (key and site and key not in sandbox_state().store("thinkific", "revoked")):
        return None
    return error_response(401, "Unauthorized")


def _page(items: list[dict[str, Any]]) -> Response:
    limit = int(request.args.get("limit", 25))
    page = int(request.args.get("page", 1))
    chunk = items[(page - 1) * limit : page * limit]
    total_pages = max(1, -(-len(items) // limit))
    return jsonify(items=chunk, meta={"pagination": {
        "current_page": page, "next_page": page + 1 if page < total_pages else None,
        "prev_page": page - 1 if page > 1 else None, "total_pages": total_pages,
        "total_items": len(items), "entries_info": f"{len(chunk)} of {len(items)}"}})  # fmt: skip


@blueprint.get(f"{PREFIX}/users")
def list_users() -> Response:
    email = request.args.get("query[email]")
    with sandbox_state().lock:
        found = [u for u in _users().values() if email is None or u["email"] == email.lower()]
    return _page(found)


@blueprint.post(f"{PREFIX}/users")
def create_user() -> Response:
    body = request.get_json(silent=True) or {}
    errors = {
        f: ["can't be blank"] for f in ("first_name", "last_name", "email") if not body.get(f)
    }
    state = sandbox_state()
    with state.lock:
        email = str(body.get("email", "")).lower()
        if email and any(u["email"] == email for u in _users().values()):
            errors["email"] = ["has already been taken"]
        if errors:
            response = jsonify(errors=errors)
            response.status_code = 422
            return response
        user_id = int(state.new_id(numeric=True))
        user = {"id": user_id, "email": email, "first_name": body["first_name"],
                "last_name": body["last_name"], "full_name": f"{body['first_name']} {body['last_name']}",
                "created_at": _now(), "roles": body.get("roles", []), "external_source": None}  # fmt: skip
        _users()[user_id] = user
    set_effect("user.created", email)
    response = jsonify(user)
    response.status_code = 201
    return response


@blueprint.get(f"{PREFIX}/enrollments")
def list_enrollments() -> Response:
    user_id = request.args.get("query[user_id]", type=int)
    course_id = request.args.get("query[course_id]", type=int)
    with sandbox_state().lock:
        found = [
            e for e in _enrollments().values()
            if (user_id is None or e["user_id"] == user_id)
            and (course_id is None or e["course_id"] == course_id)
        ]  # fmt: skip
    return _page([_view(e) for e in found])


def _view(enrollment: dict[str, Any]) -> dict[str, Any]:
    expiry = enrollment.get("expiry_date")
    expired = bool(expiry and expiry <= _now())
    return {**enrollment, "expired": expired}


@blueprint.post(f"{PREFIX}/enrollments")
def create_enrollment() -> Response:
    body = request.get_json(silent=True) or {}
    state = sandbox_state()
    with state.lock:
        user = _users().get(int(body.get("user_id") or 0))
        if user is None or not isinstance(body.get("course_id"), int):
            response = jsonify(errors=["User or course could not be found."])
            response.status_code = 422
            return response
        enrollment_id = int(state.new_id(numeric=True))
        enrollment = {
            "id": enrollment_id, "user_email": user["email"], "user_name": user["full_name"],
            "user_id": user["id"], "course_name": f"Course {body['course_id']}",
            "course_id": body["course_id"], "percentage_completed": 0.0,
            "is_free_trial": body.get("activated_at") is None, "completed": False,
            "started_at": None, "activated_at": body.get("activated_at"), "completed_at": None,
            "updated_at": _now(), "expiry_date": body.get("expiry_date"),
        }  # fmt: skip
        _enrollments()[enrollment_id] = enrollment
    set_effect("enrollment.created", f"{user['id']}:{body['course_id']}")
    response = jsonify(_view(enrollment))
    response.status_code = 201
    return response


@blueprint.put(f"{PREFIX}/enrollments/<int:enrollment_id>")
def update_enrollment(enrollment_id: int) -> Response:
    body = request.get_json(silent=True) or {}
    with sandbox_state().lock:
        enrollment = _enrollments().get(enrollment_id)
        if enrollment is None:
            return error_response(404, "Record not found.")
        for field in ("activated_at", "expiry_date"):
            if field in body:
                enrollment[field] = body[field]
        enrollment["updated_at"] = _now()
    kind = "enrollment.expired" if body.get("expiry_date") else "enrollment.reactivated"
    set_effect(kind, f"{enrollment['user_id']}:{enrollment['course_id']}:{time.time()}")
    return Response(status=204)
