"""Thinkific's public API v1, emulated: users, enrollments, orders (api-evangelist/thinkific OpenAPI).

Auth: `X-Auth-API-Key` + `X-Auth-Subdomain`, or `Authorization: Bearer`. Lists answer
`{"items": [...], "meta": {"pagination": {...}}}`; validation errors are 422 `{"errors": {...}}`;
a missing record is 404 `{"error": "Record not found."}`; over the limit, 429.

Control helpers (`/_sandbox/thinkific/...`) do what a student and Thinkific would do and return the
webhook Thinkific would send, signed with `X-Thinkific-Hmac-Sha256` (hex HMAC-SHA256 of the body
keyed with the site's API key, given as `secret`).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from devtools.sandbox.app import sandbox_state, set_effect
from pipeline.signatures.body_hmac import body_hmac

blueprint = Blueprint("sandbox_thinkific", __name__)
control = Blueprint("sandbox_thinkific_control", __name__)
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
    return jsonify(
        items=chunk,
        meta={
            "pagination": {
                "current_page": page,
                "next_page": page + 1 if page < total_pages else None,
                "prev_page": page - 1 if page > 1 else None,
                "total_pages": total_pages,
                "total_items": len(items),
                "entries_info": f"{len(chunk)} of {len(items)}",
            }
        },
    )


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
        user = {
            "id": user_id,
            "email": email,
            "first_name": body["first_name"],
            "last_name": body["last_name"],
            "full_name": f"{body['first_name']} {body['last_name']}",
            "created_at": _now(),
            "roles": body.get("roles", []),
            "external_source": None,
        }
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
            e
            for e in _enrollments().values()
            if (user_id is None or e["user_id"] == user_id)
            and (course_id is None or e["course_id"] == course_id)
        ]
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
            "id": enrollment_id,
            "user_email": user["email"],
            "user_name": user["full_name"],
            "user_id": user["id"],
            "course_name": f"Course {body['course_id']}",
            "course_id": body["course_id"],
            "percentage_completed": 0.0,
            "is_free_trial": body.get("activated_at") is None,
            "completed": False,
            "started_at": None,
            "activated_at": body.get("activated_at"),
            "completed_at": None,
            "updated_at": _now(),
            "expiry_date": body.get("expiry_date"),
        }
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


@blueprint.get(f"{PREFIX}/enrollments/<int:enrollment_id>")
def show_enrollment(enrollment_id: int) -> Response:
    return _show(_enrollments().get(enrollment_id), _view)


@blueprint.get(f"{PREFIX}/users/<int:user_id>")
def show_user(user_id: int) -> Response:
    return _show(_users().get(user_id), dict)


@blueprint.get(f"{PREFIX}/orders/<int:order_id>")
def show_order(order_id: int) -> Response:
    return _show(_orders().get(order_id), dict)


def _show(found: dict[str, Any] | None, view: Any) -> Response:
    with sandbox_state().lock:
        return (
            jsonify(view(found)) if found is not None else error_response(404, "Record not found.")
        )


def _orders() -> dict[int, dict[str, Any]]:
    return sandbox_state().store("thinkific", "orders")


# -- what a student and Thinkific would do: the sandbox's control helpers --------------------


def _student(spec: dict[str, Any]) -> dict[str, Any]:
    email = str(spec["email"]).lower()
    with sandbox_state().lock:
        for user in _users().values():
            if user["email"] == email:
                return user
        first, last = spec.get("first_name", "Sam"), spec.get("last_name", "Student")
        user = {
            "id": int(sandbox_state().new_id(numeric=True)),
            "email": email,
            "first_name": first,
            "last_name": last,
            "full_name": f"{first} {last}",
            "created_at": _now(),
            "roles": [],
            "external_source": None,
        }
        _users()[user["id"]] = user
        return user


def webhook(resource: str, action: str, payload: dict[str, Any], secret: str) -> dict[str, Any]:
    """The request Thinkific would POST: raw body and headers, signed with the site's key."""
    envelope = {
        "id": datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        + str(sandbox_state().new_id(numeric=True)),
        "resource": resource,
        "action": action,
        "tenant_id": "59",
        "created_at": _now(),
        "payload": payload,
    }
    body = json.dumps(envelope)
    headers = {
        "Content-Type": "application/json",
        "X-Thinkific-Topic": f"{resource}.{action}",
        "X-Thinkific-Subdomain": "test-creator",
        "X-Thinkific-Hmac-Sha256": body_hmac(secret, body.encode()),
    }
    return {"body": body, "headers": headers, "event": envelope}


def _hook_payload(enrollment: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    # the webhook carries a partial copy: percentages as strings, no e-mail guarantees
    return {
        "activated_at": enrollment["activated_at"],
        "completed_at": enrollment["completed_at"],
        "course": {"id": enrollment["course_id"], "name": enrollment["course_name"]},
        "course_id": enrollment["course_id"],
        "created_at": enrollment["updated_at"],
        "expiry_date": enrollment["expiry_date"],
        "free_trial": enrollment["is_free_trial"],
        "id": enrollment["id"],
        "percentage_completed": str(enrollment["percentage_completed"]),
        "started_at": enrollment["started_at"],
        "updated_at": enrollment["updated_at"],
        "user": {
            "id": user["id"],
            "email": user["email"],
            "first_name": user["first_name"],
            "last_name": user["last_name"],
        },
    }


@control.post("/enrollments")
def control_enroll() -> Response:
    spec = request.get_json(force=True)
    user, now = _student(spec), _now()
    with sandbox_state().lock:
        enrollment = {
            "id": int(sandbox_state().new_id(numeric=True)),
            "user_email": user["email"],
            "user_name": user["full_name"],
            "user_id": user["id"],
            "course_name": f"Course {spec['course_id']}",
            "course_id": int(spec["course_id"]),
            "percentage_completed": 0.0,
            "is_free_trial": False,
            "completed": False,
            "started_at": now,
            "activated_at": now,
            "completed_at": None,
            "updated_at": now,
            "expiry_date": None,
        }
        _enrollments()[enrollment["id"]] = enrollment
    return jsonify(
        webhook("enrollment", "created", _hook_payload(enrollment, user), spec["secret"])
    )


@control.post("/enrollments/<int:enrollment_id>/complete")
def control_complete(enrollment_id: int) -> Response:
    spec = request.get_json(force=True)
    with sandbox_state().lock:
        enrollment = _enrollments().get(enrollment_id)
        if enrollment is None:
            abort(404)
        now = _now()
        enrollment.update(
            percentage_completed=1.0, completed=True, completed_at=now, updated_at=now
        )
        user = _users()[enrollment["user_id"]]
    return jsonify(
        webhook("enrollment", "completed", _hook_payload(enrollment, user), spec["secret"])
    )


@control.post("/orders")
def control_order() -> Response:
    spec = request.get_json(force=True)
    user, amount = _student(spec), int(spec.get("amount_cents", 5000))
    product = {
        "product_id": int(spec.get("product_id", 1)),
        "product_name": spec.get("product_name", "Introduction to Webhooks"),
    }
    with sandbox_state().lock:
        order = {
            "id": int(sandbox_state().new_id(numeric=True)),
            "user_id": user["id"],
            "user_email": user["email"],
            "user_name": user["full_name"],
            **product,
            "amount_dollars": f"{amount / 100:.2f}",
            "amount_cents": amount,
            "subscription": False,
            "coupon_code": None,
            "coupon_id": None,
            "affiliate_referral_code": None,
            "status": "Complete",
            "created_at": _now(),
            "items": [{**product, "amount_dollars": f"{amount / 100:.2f}", "amount_cents": amount}],
        }
        _orders()[order["id"]] = order
    payload = {
        "affiliate_referral_code": None,
        "amount_cents": amount,
        "amount_dollars": amount // 100,
        "billing_name": user["full_name"],
        "coupon": None,
        "created_at": order["created_at"],
        "id": order["id"],
        "order_number": 1000 + order["id"],
        "payment_type": "one-time",
        **product,
        "status": "Complete",
        "user": {
            "email": user["email"],
            "first_name": user["first_name"],
            "id": user["id"],
            "last_name": user["last_name"],
        },
    }
    return jsonify(webhook("order", "created", payload, spec["secret"]))
