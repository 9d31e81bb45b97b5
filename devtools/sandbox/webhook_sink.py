"""A webhook receiver, emulated: what a creator's own endpoint does with the generic HTTP destination.

`POST` (or `PUT`) `/hooks/<name>` verifies the Standard Webhooks signature for real (the spec's
rules: "<webhook-id>.<webhook-timestamp>.<body>", HMAC-SHA256 keyed with the decoded `whsec_`
secret, any `v1` signature of the list may match, timestamps within 5 minutes either way,
constant-time comparison), then records the delivery as an effect keyed by `webhook-id`: a second
delivery with the same id shows as a duplicate, which is exactly what the receiver would dedupe.
A refused signature is 401 `{"error": …}`; an unknown hook is 404.

Control (`/_sandbox/webhook_sink`): `PUT /hooks/<name>` `{"secret": "whsec_…" | null}` creates
the hook (null: accept unsigned deliveries); `GET /hooks/<name>` lists what it received.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from devtools.sandbox.app import sandbox_state, set_effect
from pipeline.signatures.standard_webhooks import standard_webhooks_key, standard_webhooks_signature

blueprint = Blueprint("sandbox_webhook_sink", __name__)
control = Blueprint("sandbox_webhook_sink_control", __name__)
TOLERANCE_SECONDS = 300  # the reference library's 5 minutes
MAX_SIGNATURES = 5
NOT_KEPT = {"authorization", "cookie", "proxy-authorization"}


def error_response(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _hooks() -> dict[str, dict[str, Any]]:
    return sandbox_state().store("webhook_sink", "hooks")


def signature_problem(secret: str, headers: Any, body: bytes, now: float) -> str | None:
    """Why the request is not signed with `secret`, or None when it is."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        timestamp = int(stamp)
    except ValueError:
        return "webhook-timestamp is not an integer"
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return "webhook-timestamp is too old or too new"
    expected = standard_webhooks_signature(standard_webhooks_key(secret), msg_id, timestamp, body)
    for item in signatures.split(" ")[:MAX_SIGNATURES]:
        version, _, encoded = item.partition(",")
        try:
            given = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if version == "v1" and hmac.compare_digest(expected, given):
            return None
    return "no matching signature"


@blueprint.route("/hooks/<name>", methods=["POST", "PUT"])
def receive(name: str) -> Response:
    hook = _hooks().get(name)
    if hook is None:
        return error_response(404, f"no hook named {name}")
    body = request.get_data()
    if hook.get("secret"):
        problem = signature_problem(hook["secret"], request.headers, body, time.time())
        if problem:
            return error_response(401, problem)
    webhook_id = request.headers.get("webhook-id") or "sha256:" + hashlib.sha256(body).hexdigest()
    try:
        parsed: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        parsed = None
    count = set_effect("delivery.received", f"{name}:{webhook_id}")
    with sandbox_state().lock:
        hook["deliveries"].append(
            {
                "webhook_id": webhook_id,
                "method": request.method,
                "json": parsed,
                "body": body.decode(errors="replace"),
                "headers": {k: v for k, v in request.headers.items() if k.lower() not in NOT_KEPT},
                "signed": bool(hook.get("secret")),
                "copy": count,
            }
        )
    return jsonify(received=True, duplicate=count > 1)


@control.put("/hooks/<name>")
def create_hook(name: str) -> Response:
    spec = request.get_json(silent=True) or {}
    secret = spec.get("secret")
    if secret is not None:
        try:
            standard_webhooks_key(str(secret))
        except ValueError as exc:
            return error_response(400, str(exc))
    with sandbox_state().lock:
        _hooks()[name] = {"secret": secret, "deliveries": []}
    return jsonify(name=name, signed=secret is not None)


@control.get("/hooks/<name>")
def list_deliveries(name: str) -> Response:
    with sandbox_state().lock:
        hook = _hooks().get(name)
        if hook is None:
            return error_response(404, f"no hook named {name}")
        return jsonify(deliveries=list(hook["deliveries"]))
