"""Calendly API v2, emulated: the two reads our fetch makes, and the webhooks a booking causes.

developer.calendly.com: `GET /scheduled_events/{uuid}` and
`GET /scheduled_events/{event_uuid}/invitees/{invitee_uuid}`, each `{"resource": {...}}`; Bearer
personal access tokens (JWTs, so a token here must look like one); errors `{"title", "message"}`
(e.g. 404 "Resource Not Found"). Invitee and event objects carry every field of the published
Invitee / Scheduled Event objects; webhooks are the published Webhook Payload (`created_at`,
`created_by`, `event`, `payload` = the invitee plus its `scheduled_event`), signed
`Calendly-Webhook-Signature: t=…,v1=…` with the signing key given to the control request.

Control (`/_sandbox/calendly`): `POST /bookings`, `POST /invitees/<uuid>/reschedule` (the old
invitee canceled with `rescheduled: true`, a new event and invitee with `old_invitee`: both
webhooks, canceled first, as Calendly sends them), `POST /invitees/<uuid>/cancel`,
`POST /tokens/<token>/revoke`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request

from devtools.sandbox.app import sandbox_state
from pipeline.signatures.timestamped_hmac import timestamped_hmac_header

blueprint = Blueprint("sandbox_calendly", __name__)
control = Blueprint("sandbox_calendly_control", __name__)
TITLES = {
    400: "Invalid Argument",
    401: "Unauthenticated",
    403: "Permission Denied",
    404: "Resource Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_JWT = re.compile(r"^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}$")
USER = "AAAAAAAAAAAAAAAA"


def error_response(status: int, message: str) -> Response:
    response = jsonify(title=TITLES.get(status, "Error"), message=message)
    response.status_code = status
    return response


@blueprint.before_request
def _authenticate() -> Response | None:
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else ""
    if not _JWT.match(token) or token in sandbox_state().store("calendly", "revoked"):
        return error_response(401, "The access token is invalid")
    return None


def _events() -> dict[str, dict[str, Any]]:
    return sandbox_state().store("calendly", "events")


def _invitees() -> dict[str, dict[str, Any]]:
    return sandbox_state().store("calendly", "invitees")


def _missing() -> Response:
    return error_response(404, "The server could not find the requested resource.")


@blueprint.get("/scheduled_events/<event_uuid>")
def get_event(event_uuid: str) -> Response:
    found = _events().get(event_uuid)
    return jsonify(resource=found) if found else _missing()


@blueprint.get("/scheduled_events/<event_uuid>/invitees/<invitee_uuid>")
def get_invitee(event_uuid: str, invitee_uuid: str) -> Response:
    found = _invitees().get(invitee_uuid)
    if found is None or found["event"].rsplit("/", 1)[-1] != event_uuid:
        return _missing()
    return jsonify(resource=found)


# -- what an invitee and Calendly would do: the control helpers ------------------------------


def _stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _base() -> str:
    return request.host_url.rstrip("/") + "/calendly"


def _new_event(spec: dict[str, Any], start: datetime) -> dict[str, Any]:
    base, now, event_uuid = _base(), _stamp(), str(uuid.uuid4())
    minutes = int(spec.get("duration_minutes", 30))
    event = {
        "uri": f"{base}/scheduled_events/{event_uuid}",
        "name": spec.get("event_name", f"{minutes} Minute Meeting"),
        "meeting_notes_plain": None,
        "meeting_notes_html": None,
        "status": "active",
        "start_time": _stamp(start),
        "end_time": _stamp(start + timedelta(minutes=minutes)),
        "event_type": f"{base}/event_types/BBBBBBBBBBBBBBBB",
        "location": {"type": "zoom", "status": "pushed", "join_url": "https://zoom.us/j/1"},
        "invitees_counter": {"total": 1, "active": 1, "limit": 1},
        "created_at": now,
        "updated_at": now,
        "event_memberships": [
            {
                "user": f"{base}/users/{USER}",
                "user_email": "host@example.com",
                "user_name": "Creator Host",
            }
        ],
        "event_guests": [],
    }
    _events()[event_uuid] = event
    return event


def _new_invitee(spec: dict[str, Any], event: dict[str, Any], old: str | None) -> dict[str, Any]:
    invitee_uuid, now = str(uuid.uuid4()), _stamp()
    invitee = {
        "uri": f"{event['uri']}/invitees/{invitee_uuid}",
        "email": spec["email"],
        "first_name": spec.get("first_name"),
        "last_name": spec.get("last_name"),
        "name": spec.get("name", spec["email"].split("@")[0]),
        "status": "active",
        "questions_and_answers": [],
        "timezone": spec["timezone"],
        "event": event["uri"],
        "created_at": now,
        "updated_at": now,
        "tracking": dict.fromkeys(
            (
                "utm_campaign",
                "utm_source",
                "utm_medium",
                "utm_content",
                "utm_term",
                "salesforce_uuid",
            )
        ),
        "text_reminder_number": None,
        "rescheduled": False,
        "old_invitee": old,
        "new_invitee": None,
        "cancel_url": f"https://calendly.com/cancellations/{invitee_uuid}",
        "reschedule_url": f"https://calendly.com/reschedulings/{invitee_uuid}",
        "routing_form_submission": None,
        "payment": None,
        "no_show": None,
        "reconfirmation": None,
        "scheduling_method": None,
        "invitee_scheduled_by": None,
    }
    _invitees()[invitee_uuid] = invitee
    return invitee


def _cancel(invitee: dict[str, Any], reason: str | None, by_reschedule: str | None) -> None:
    now = _stamp()
    cancellation = {
        "canceled_by": invitee["name"],
        "reason": reason,
        "canceler_type": "invitee",
        "created_at": now,
    }
    invitee.update(status="canceled", updated_at=now, cancellation=cancellation)
    if by_reschedule:
        invitee.update(rescheduled=True, new_invitee=by_reschedule)
    event = _events()[invitee["event"].rsplit("/", 1)[-1]]
    event.update(status="canceled", updated_at=now, cancellation=cancellation)
    event["invitees_counter"]["active"] = 0


def webhook(kind: str, invitee: dict[str, Any], signing_key: str) -> dict[str, Any]:
    """The request Calendly would send: the exact body and its headers, signed now."""
    scheduled = _events()[invitee["event"].rsplit("/", 1)[-1]]
    document = {
        "created_at": _stamp(),
        "created_by": f"{_base()}/users/{USER}",
        "event": kind,
        "payload": {**invitee, "scheduled_event": scheduled},
    }
    body = json.dumps(document).encode()
    signature = timestamped_hmac_header(signing_key, body, int(time.time()))
    headers = {"Content-Type": "application/json", "Calendly-Webhook-Signature": signature}
    return {"body": body.decode(), "headers": headers}


def _spec() -> tuple[dict[str, Any], str]:
    spec: dict[str, Any] = request.get_json(force=True) or {}
    return spec, str(spec.get("signing_key") or "")


def _start(spec: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(spec["start_time"])).astimezone(UTC)


@control.post("/bookings")
def control_book() -> Response:
    spec, key = _spec()
    if not key or "email" not in spec or "timezone" not in spec or "start_time" not in spec:
        return error_response(400, "email, timezone, start_time and signing_key are required")
    invitee = _new_invitee(spec, _new_event(spec, _start(spec)), old=None)
    return jsonify(
        invitee=invitee["uri"].rsplit("/", 1)[-1], webhook=webhook("invitee.created", invitee, key)
    )


@control.post("/invitees/<invitee_uuid>/reschedule")
def control_reschedule(invitee_uuid: str) -> Response:
    spec, key = _spec()
    old = _invitees().get(invitee_uuid)
    if old is None or old["status"] != "active" or not key or "start_time" not in spec:
        return error_response(400, "an active invitee, start_time and signing_key are required")
    details = {
        "email": old["email"],
        "name": old["name"],
        "timezone": old["timezone"],
        "first_name": old["first_name"],
        "last_name": old["last_name"],
        **spec,
    }
    new = _new_invitee(details, _new_event(details, _start(spec)), old=old["uri"])
    _cancel(old, reason=None, by_reschedule=new["uri"])
    webhooks = [webhook("invitee.canceled", old, key), webhook("invitee.created", new, key)]
    return jsonify(invitee=new["uri"].rsplit("/", 1)[-1], webhooks=webhooks)


@control.post("/invitees/<invitee_uuid>/cancel")
def control_cancel(invitee_uuid: str) -> Response:
    spec, key = _spec()
    invitee = _invitees().get(invitee_uuid)
    if invitee is None or invitee["status"] != "active" or not key:
        return error_response(400, "an active invitee and signing_key are required")
    _cancel(invitee, reason=spec.get("reason"), by_reschedule=None)
    return jsonify(webhook=webhook("invitee.canceled", invitee, key))


@control.post("/tokens/<token>/revoke")
def control_revoke(token: str) -> Response:
    sandbox_state().store("calendly", "revoked")[token] = True
    return jsonify(status="revoked")
