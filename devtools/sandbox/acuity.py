"""Acuity Scheduling API v1, emulated: `GET /api/v1/appointments/{id}` and the webhooks it sends.

developers.acuityscheduling.com: HTTP Basic with the numeric user id and the API key, 401 on
failure; errors `{"status_code", "message", "error"}` (reference/api-errors, including the 429
"Rate limit reached. Limit 10req/s and 20 concurrent connections."). An appointment carries every
field of the documented appointment object; `datetime` is rendered in the calendar's zone with a
`-0500`-style offset, `date`/`time`/`endTime` as Acuity formats them ("November 1, 2026", "9:00am"),
`timezone` is the client's own zone. Webhooks are the form posts Acuity sends (`action`, `id`,
`calendarID`, `appointmentTypeID`), signed `X-Acuity-Signature` = base64 HMAC-SHA256 of the body
with the account's API key; `changed` accompanies every other action, as it does when an account
subscribes to it too.

Control (`/_sandbox/acuity`): `POST /appointments` (its `user_id` and `api_key` open the account),
`POST /appointments/<id>/reschedule`, `POST /appointments/<id>/cancel`; each answers the webhooks.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, jsonify, request

from devtools.sandbox.app import sandbox_state
from pipeline.signatures.body_hmac import body_hmac

blueprint = Blueprint("sandbox_acuity", __name__)
control = Blueprint("sandbox_acuity_control", __name__)
ERRORS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "too_many_requests",
    500: "internal_server_error",
    503: "service_unavailable",
}
MESSAGES = {
    401: "Unauthorized",
    403: "Forbidden",
    429: "Rate limit reached. Limit 10req/s and 20 concurrent connections.",
}
ALL_ACTIONS = ("scheduled", "rescheduled", "canceled", "changed")


def error_response(status: int, message: str) -> Response:
    response = jsonify(
        status_code=status, message=MESSAGES.get(status, message), error=ERRORS.get(status, "error")
    )
    response.status_code = status
    return response


def _accounts() -> dict[str, dict[str, Any]]:
    return sandbox_state().store("acuity", "accounts")


def _appointments() -> dict[int, dict[str, Any]]:
    return sandbox_state().store("acuity", "appointments")


@blueprint.before_request
def _authenticate() -> Response | None:
    header = request.headers.get("Authorization", "")
    user, key = "", ""
    if header.startswith("Basic "):
        user, _, key = base64.b64decode(header[6:]).decode(errors="replace").partition(":")
    account = _accounts().get(user)
    if account is None or not key or account["api_key"] != key:
        return error_response(401, "Unauthorized")
    g.acuity_user = user
    return None


@blueprint.get("/api/v1/appointments/<int:appointment_id>")
def get_appointment(appointment_id: int) -> Response:
    found = _appointments().get(appointment_id)
    if found is None or found["_owner"] != g.acuity_user:
        return error_response(404, "Not Found. Did you mean `/appointments/{id:number}`?")
    return jsonify({k: v for k, v in found.items() if not k.startswith("_")})


# -- what a client and Acuity would do: the control helpers ----------------------------------


def _clock(moment: datetime) -> str:
    return f"{moment.hour % 12 or 12}:{moment:%M}{'am' if moment.hour < 12 else 'pm'}"


def _day(moment: datetime) -> str:
    return f"{moment:%B} {moment.day}, {moment.year}"


def _place(appointment: dict[str, Any], start: datetime) -> None:
    """Renders the start in the calendar's zone the way Acuity does."""
    local = start.astimezone(ZoneInfo(appointment["calendarTimezone"]))
    end = local + timedelta(minutes=int(appointment["duration"]))
    end = end.astimezone(local.tzinfo)  # wall clock after any DST change inside the slot
    appointment.update(
        datetime=local.strftime("%Y-%m-%dT%H:%M:%S%z"),
        date=_day(local),
        time=_clock(local),
        endTime=_clock(end),
    )


def _new_appointment(spec: dict[str, Any], owner: str, start: datetime) -> dict[str, Any]:
    appointment_id = int(sandbox_state().new_id(numeric=True)) + 600_000_000
    now = datetime.now(ZoneInfo(spec.get("calendarTimezone", "America/New_York")))
    appointment: dict[str, Any] = {
        "id": appointment_id,
        "firstName": spec.get("firstName", ""),
        "lastName": spec.get("lastName", ""),
        "phone": spec.get("phone", ""),
        "email": spec["email"],
        "date": "",
        "time": "",
        "endTime": "",
        "dateCreated": _day(now),
        "datetimeCreated": now.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "datetime": "",
        "price": "0.00",
        "priceSold": "0.00",
        "paid": "no",
        "amountPaid": "0.00",
        "type": spec.get("type", "Discovery Call"),
        "appointmentTypeID": int(spec.get("appointmentTypeID", 26099563)),
        "classID": None,
        "addonIDs": [],
        "category": "",
        "duration": str(int(spec.get("duration", 60))),
        "calendar": "Creator",
        "calendarID": int(spec.get("calendarID", 4672347)),
        "certificate": None,
        "confirmationPage": f"https://app.acuityscheduling.com/schedule.php?owner={owner}"
        f"&action=appt&id%5B%5D={appointment_id:x}",
        "location": "",
        "notes": "",
        "timezone": spec["timezone"],
        "calendarTimezone": spec.get("calendarTimezone", "America/New_York"),
        "canceled": False,
        "canClientCancel": True,
        "canClientReschedule": True,
        "labels": None,
        "forms": [],
        "formsText": "",
        "isVerified": False,
        "scheduledBy": None,
        "_owner": owner,
    }
    _place(appointment, start)
    _appointments()[appointment_id] = appointment
    return appointment


def webhooks(action: str, appointment: dict[str, Any]) -> list[dict[str, Any]]:
    """The form posts Acuity sends for one change: the action itself, then `changed`."""
    account = _accounts()[appointment["_owner"]]
    sent = []
    for name in (action, "changed"):
        if name not in account["actions"]:
            continue
        body = urlencode(
            [
                ("action", name),
                ("id", str(appointment["id"])),
                ("calendarID", str(appointment["calendarID"])),
                ("appointmentTypeID", str(appointment["appointmentTypeID"])),
            ]
        )
        signature = body_hmac(account["api_key"], body.encode(), encoding="base64")
        sent.append(
            {
                "body": body,
                "headers": {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Acuity-Signature": signature,
                },
            }
        )
    return sent


def _start(spec: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(spec["start"])).astimezone(UTC)


@control.post("/appointments")
def control_schedule() -> Response:
    spec: dict[str, Any] = request.get_json(force=True) or {}
    user, key = str(spec.get("user_id", "")), str(spec.get("api_key", ""))
    if not user.isdigit() or not key or not {"email", "timezone", "start"} <= set(spec):
        return error_response(400, "user_id, api_key, email, timezone and start are required")
    account = _accounts().setdefault(user, {"api_key": key, "actions": ALL_ACTIONS})
    account.update(api_key=key, actions=tuple(spec.get("webhooks", ALL_ACTIONS)))
    appointment = _new_appointment(spec, user, _start(spec))
    return jsonify(id=appointment["id"], webhooks=webhooks("scheduled", appointment))


def _active(appointment_id: int) -> dict[str, Any] | None:
    found = _appointments().get(appointment_id)
    return found if found is not None and not found["canceled"] else None


@control.post("/appointments/<int:appointment_id>/reschedule")
def control_reschedule(appointment_id: int) -> Response:
    spec: dict[str, Any] = request.get_json(force=True) or {}
    appointment = _active(appointment_id)
    if appointment is None or "start" not in spec:
        return error_response(400, "an active appointment and a start are required")
    _place(appointment, _start(spec))
    return jsonify(id=appointment_id, webhooks=webhooks("rescheduled", appointment))


@control.post("/appointments/<int:appointment_id>/cancel")
def control_cancel(appointment_id: int) -> Response:
    appointment = _active(appointment_id)
    if appointment is None:
        return error_response(400, "an active appointment is required")
    appointment.update(canceled=True, canClientCancel=False, canClientReschedule=False)
    return jsonify(id=appointment_id, webhooks=webhooks("canceled", appointment))
