"""Kit API v4, emulated: subscribers (upsert, find, unsubscribe), tags (list, create, tag).

As the V4 reference describes it (api.kit.com OpenAPI; developers.kit.com/api-reference): auth by
`X-Kit-Api-Key` (or `Authorization: Bearer`); errors `{"errors": ["…"]}`; a 429's body is the
plain text "Retry later" with no Retry-After; lists page with cursors (`after`, `per_page` ≤ 1000,
`pagination.{has_next_page, end_cursor, …}`); `GET /v4/subscribers` shows `active` ones unless
`status` says otherwise; `POST /v4/subscribers` upserts (201/200) without changing the state;
`POST /v4/tags` answers 200 with the existing tag of that name; tagging an already tagged
subscriber answers 200.

Effects are real-world changes: `subscriber.created`, `subscriber.unsubscribed` (state changed),
`tag.created`, `subscriber.tagged` (a new tagging). Kit itself never tags twice, so a second
tagging call shows in the call record, not as an effect.

Control (`/_sandbox/kit/webhooks`): a person is activated, unsubscribes or gets a tag; the
webhook Kit would send comes back: a signed webhook-endpoint delivery (`X-Kit-Signature`, one
event per address given) or a legacy `{"subscriber": …}` body.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from devtools.sandbox.app import sandbox_state, set_effect
from pipeline.signatures.timestamped_hmac import timestamped_hmac_header

blueprint = Blueprint("sandbox_kit", __name__)
control = Blueprint("sandbox_kit_control", __name__)
PREFIX = "/v4"
STATES = ("active", "cancelled", "bounced", "complained", "inactive")


def error_response(status: int, message: str) -> Response:
    if status == 429:
        return Response("Retry later", status=429, mimetype="text/plain")
    response = jsonify(errors=[message])
    response.status_code = status
    return response


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _store(name: str) -> dict[Any, Any]:
    return sandbox_state().store("kit", name)


@blueprint.before_request
def _authenticate() -> Response | None:
    header = request.headers.get("Authorization", "")
    credential = request.headers.get("X-Kit-Api-Key", "") or header.removeprefix("Bearer ").strip()
    if credential and credential != header and credential not in _store("revoked"):
        return None
    return error_response(401, "The access token is invalid")


def _page(items: list[dict[str, Any]], key: str) -> Response:
    per_page = max(1, min(int(request.args.get("per_page", 500)), 1000))
    start = _cursor(request.args.get("after"))
    chunk = items[start : start + per_page]
    end = start + len(chunk)
    return jsonify(
        {
            key: chunk,
            "pagination": {
                "has_previous_page": start > 0,
                "has_next_page": end < len(items),
                "start_cursor": _encode(start),
                "end_cursor": _encode(end),
                "per_page": per_page,
            },
        }
    )


def _encode(position: int) -> str:
    return base64.b64encode(json.dumps([position]).encode()).decode()


def _cursor(value: str | None) -> int:
    if not value:
        return 0
    try:
        return int(json.loads(base64.b64decode(value))[0])
    except (ValueError, TypeError, IndexError):
        return 0


def _by_email(email: str) -> dict[str, Any] | None:
    wanted = email.strip().lower()
    return next((s for s in _store("subscribers").values() if s["email_address"] == wanted), None)


def _view(subscriber: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in subscriber.items() if not k.startswith("_")}


@blueprint.get(f"{PREFIX}/subscribers")
def list_subscribers() -> Response:
    status = request.args.get("status", "active")
    emails = {e.strip().lower() for e in request.args.get("email_address", "").split(",") if e}
    with sandbox_state().lock:
        found = [
            _view(s)
            for s in _store("subscribers").values()
            if (status == "all" or s["state"] == status)
            and (not emails or s["email_address"] in emails)
        ]
    return _page(found, "subscribers")


def upsert(
    email: str, first_name: str | None, state: str = "active"
) -> tuple[dict[str, Any], bool]:
    """The subscriber with this address, created when new; the state of an existing one stays."""
    with sandbox_state().lock:
        found = _by_email(email)
        if found is not None:
            if first_name:
                found["first_name"] = first_name
            return found, False
        sub_id = int(sandbox_state().new_id(numeric=True))
        found = {
            "id": sub_id,
            "first_name": first_name,
            "email_address": email.strip().lower(),
            "state": state,
            "created_at": _now(),
            "fields": {},
        }
        _store("subscribers")[sub_id] = found
        return found, True


@blueprint.post(f"{PREFIX}/subscribers")
def create_subscriber() -> Response:
    body = request.get_json(silent=True) or {}
    email = body.get("email_address")
    if not isinstance(email, str) or "@" not in email:
        return error_response(422, "Email address is invalid")
    state = body.get("state") or "active"
    if state not in STATES:
        return error_response(422, "State is not included in the list")
    subscriber, created = upsert(email, body.get("first_name"), state)
    if created:
        set_effect("subscriber.created", subscriber["email_address"])
    response = jsonify(subscriber=_view(subscriber))
    response.status_code = 201 if created else 200
    return response


@blueprint.get(f"{PREFIX}/subscribers/<int:sub_id>")
def get_subscriber(sub_id: int) -> Response:
    subscriber = _store("subscribers").get(sub_id)
    if subscriber is None:
        return error_response(404, "Not Found")
    return jsonify(subscriber=_view(subscriber))


@blueprint.post(f"{PREFIX}/subscribers/<int:sub_id>/unsubscribe")
def unsubscribe(sub_id: int) -> Response:
    with sandbox_state().lock:
        subscriber = _store("subscribers").get(sub_id)
        if subscriber is None:
            return error_response(404, "Not Found")
        changed = subscriber["state"] != "cancelled"
        subscriber["state"] = "cancelled"
    if changed:
        set_effect("subscriber.unsubscribed", str(sub_id))
    return Response(status=204)


@blueprint.get(f"{PREFIX}/tags")
def list_tags() -> Response:
    with sandbox_state().lock:
        tags = sorted(_store("tags").values(), key=lambda t: t["id"])
    return _page([dict(t) for t in tags], "tags")


def find_or_create_tag(name: str) -> tuple[dict[str, Any], bool]:
    with sandbox_state().lock:
        found = next((t for t in _store("tags").values() if t["name"] == name), None)
        if found is not None:
            return found, False
        tag_id = int(sandbox_state().new_id(numeric=True))
        found = {"id": tag_id, "name": name, "created_at": _now()}
        _store("tags")[tag_id] = found
        return found, True


@blueprint.post(f"{PREFIX}/tags")
def create_tag() -> Response:
    name = (request.get_json(silent=True) or {}).get("name")
    if not isinstance(name, str) or not name.strip():
        return error_response(422, "Name can't be blank")
    tag, created = find_or_create_tag(name)
    if created:
        set_effect("tag.created", name)
    response = jsonify(tag=tag)
    response.status_code = 201 if created else 200
    return response


def tag_subscriber(tag_id: int, subscriber: dict[str, Any]) -> bool:
    """True when the tagging is new."""
    with sandbox_state().lock:
        taggings = _store("taggings")
        if (tag_id, subscriber["id"]) in taggings:
            return False
        taggings[(tag_id, subscriber["id"])] = _now()
        return True


@blueprint.post(f"{PREFIX}/tags/<int:tag_id>/subscribers")
def tag_by_email(tag_id: int) -> Response:
    email = (request.get_json(silent=True) or {}).get("email_address")
    if not isinstance(email, str) or not email:
        return error_response(
            422, "Either subscriber id or email address is required to tag subscriber"
        )
    subscriber = _by_email(email)
    if tag_id not in _store("tags") or subscriber is None:
        return error_response(404, "Not Found")
    created = tag_subscriber(tag_id, subscriber)
    if created:
        set_effect("subscriber.tagged", f"{tag_id}:{subscriber['id']}")
    response = jsonify(subscriber={**_view(subscriber), "tagged_at": _now()})
    response.status_code = 201 if created else 200
    return response


# -- what a person and Kit would do: the webhooks -----------------------------------------------

NEW_STATES = {
    "subscriber.activated": "active",
    "subscriber.unsubscribed": "cancelled",
    "subscriber.bounced": "bounced",
    "subscriber.complained": "complained",
}


def happen(event: str, email: str, first_name: str | None, tag: str | None) -> dict[str, Any]:
    """Applies one event to the account; the `data` Kit would send about it."""
    subscriber, _ = upsert(email, first_name, "active")
    if event in NEW_STATES:
        with sandbox_state().lock:
            subscriber["state"] = NEW_STATES[event]
    data: dict[str, Any] = {"subscriber": _view(subscriber)}
    if event == "subscriber.tag_added":
        found, _ = find_or_create_tag(tag or "tagged")
        tag_subscriber(found["id"], subscriber)
        data["tag"] = {"id": found["id"], "name": found["name"]}
    return data


@control.post("/webhooks")
def control_webhook() -> Response:
    spec: dict[str, Any] = request.get_json(force=True) or {}
    event, emails = spec.get("event"), spec.get("emails") or [spec.get("email")]
    if event not in (*NEW_STATES, "subscriber.tag_added") or not all(emails):
        return error_response(400, "Give a known 'event' and an 'email' (or 'emails').")
    datas = [happen(event, e, spec.get("first_name"), spec.get("tag")) for e in emails]
    if spec.get("legacy"):
        body = json.dumps({"subscriber": datas[0]["subscriber"]}).encode()
        return jsonify(body=body.decode(), headers={"Content-Type": "application/json"})
    delivery = {
        "delivery_id": int(sandbox_state().new_id(numeric=True)),
        "events": [
            {"id": str(uuid.uuid4()), "type": event, "created": _now(), "data": data}
            for data in datas
        ],
    }
    body = json.dumps(delivery).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Kit-Webhooks/1.0"}
    if spec.get("secret"):
        stamp = int(spec.get("timestamp") or time.time())
        headers["X-Kit-Signature"] = timestamped_hmac_header(spec["secret"], body, stamp)
    return jsonify(body=body.decode(), headers=headers)


@control.post("/keys/<key>/revoke")
def control_revoke(key: str) -> Response:
    _store("revoked")[key] = True
    return jsonify(status="revoked")
