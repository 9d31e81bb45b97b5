"""Slack incoming webhooks, emulated: `POST /services/<T>/<B>/<X>` with a JSON `{"text": …}`.

Answers as Slack does (api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks):
200 with the plain-text body `ok`; plain-text errors otherwise: 400 `invalid_payload` (the body is
not JSON for its content type), 400 `no_text` (no `text`, `blocks` or `attachments`), 404
`no_service` (a revoked webhook), 410 `channel_is_archived`, 429 `rate_limited` (with Retry-After)
and 500 `rollup_error`. Any well-formed webhook path is live until the control API revokes or
archives it. Each message posted is an effect keyed by the webhook and the text, so the same
message posted twice shows as a duplicate.

Control: `GET /_sandbox/slack/messages` (what was posted), `POST /_sandbox/slack/webhooks/<X>/<state>`
with state `revoked` or `archived` (or `live` to restore).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from devtools.sandbox.app import sandbox_state, set_effect

blueprint = Blueprint("sandbox_slack", __name__)
control = Blueprint("sandbox_slack_control", __name__)
TEXTS = {
    400: "invalid_payload",
    403: "action_prohibited",
    404: "no_service",
    410: "channel_is_archived",
    429: "rate_limited",
    500: "rollup_error",
}
STATES = {"revoked": (404, "no_service"), "archived": (410, "channel_is_archived")}
MAX_TEXT = 40_000  # Slack truncates messages longer than this


def error_response(status: int, message: str) -> Response:
    text = TEXTS.get(status) or message.replace(" ", "_")
    return Response(text, status=status, mimetype="text/plain")


def _plain(status: int, text: str) -> Response:
    return Response(text, status=status, mimetype="text/plain")


def _states() -> dict[str, str]:
    return sandbox_state().store("slack", "webhooks")


@blueprint.post("/services/<team>/<bot>/<token>")
def post_message(team: str, bot: str, token: str) -> Response:
    if not (team.startswith("T") and bot.startswith("B") and token.isalnum()):
        return _plain(404, "no_service")
    state = _states().get(token)
    if state in STATES:
        return _plain(*STATES[state])
    payload = _payload()
    if payload is None:
        return _plain(400, "invalid_payload")
    text = payload.get("text")
    if not (isinstance(text, str) and text.strip()) and not (
        payload.get("blocks") or payload.get("attachments")
    ):
        return _plain(400, "no_text")
    text = (text or "")[:MAX_TEXT]
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    with sandbox_state().lock:
        sandbox_state().store("slack", "messages").setdefault(token, []).append(text)
    set_effect("message.posted", f"{token}:{digest}")
    return _plain(200, "ok")


def _payload() -> dict[str, Any] | None:
    """The JSON body, or the form field `payload` holding JSON (Slack accepts both); None if neither."""
    if request.mimetype == "application/json":
        raw: str | bytes | None = request.get_data()
    elif request.mimetype == "application/x-www-form-urlencoded":
        raw = request.form.get("payload")
    else:
        return None
    try:
        payload = json.loads(raw or b"")
    except (UnicodeDecodeError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


@control.get("/messages")
def messages() -> Response:
    with sandbox_state().lock:
        posted = {
            token: list(texts)
            for token, texts in sandbox_state().store("slack", "messages").items()
        }
    return jsonify(messages=posted)


@control.post("/webhooks/<token>/<state>")
def set_webhook_state(token: str, state: str) -> Response:
    if state not in (*STATES, "live"):
        response = jsonify(error=f"state is one of {', '.join((*STATES, 'live'))}")
        response.status_code = 400
        return response
    with sandbox_state().lock:
        if state == "live":
            _states().pop(token, None)
        else:
            _states()[token] = state
    return jsonify(token=token, state=state)
