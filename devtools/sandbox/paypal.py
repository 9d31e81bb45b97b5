"""PayPal's REST API, emulated: OAuth tokens, webhook signature postback, captures, orders, refunds.

developer.paypal.com/api/rest/authentication (`POST /v1/oauth2/token`, Basic client_id:secret,
form `grant_type=client_credentials`), /api/webhooks/v1 (`verify-webhook-signature`: seven
required fields, answer `verification_status` SUCCESS/FAILURE, HTTP 200 either way), /api/payments/v2
and /api/orders/v2 (the GETs). Every other endpoint wants a Bearer token this sandbox issued.
Errors have PayPal's shape `{name, message, debug_id, information_link, details[], links[]}`.

Webhooks are signed for real: an RSA key and a self-signed certificate are made at first use
(a sandbox reset rotates them, as PayPal rotates its certificates), the certificate is served at
`/v1/notifications/certs/<id>`, and "<transmission id>|<time>|<webhook id>|<crc32 of the body>"
is signed SHA256withRSA. The postback checks that signature with the certificate the cert_url
names. PayPal verifies the event object, not bytes, so the event is re-serialised with
`json.dumps` (exactly how this sandbox serialises the webhooks it sends) before the CRC.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request

from devtools.sandbox import _paypal_objects as objects
from devtools.sandbox._signing import rsa_sha256_sign, rsa_sha256_verify
from devtools.sandbox.app import sandbox_state
from pipeline.signatures.paypal import paypal_transmission_message

blueprint = Blueprint("sandbox_paypal", __name__)
control = Blueprint("sandbox_paypal_control", __name__)
AUTH_ALGO = "SHA256withRSA"
DEFAULT_WEBHOOK_ID = "8PT597110X687430LKGECATA"
TOKEN_SECONDS = 32400
COLLECTIONS = {
    "payments/captures": "captures",
    "payments/refunds": "refunds",
    "checkout/orders": "orders",
}
PUBLIC_ENDPOINTS = {"sandbox_paypal.oauth_token", "sandbox_paypal.certificate"}
ERROR_NAMES = {
    400: "INVALID_REQUEST",
    401: "AUTHENTICATION_FAILURE",
    403: "NOT_AUTHORIZED",
    404: "RESOURCE_NOT_FOUND",
    422: "UNPROCESSABLE_ENTITY",
    429: "RATE_LIMIT_REACHED",
    503: "SERVICE_UNAVAILABLE",
}
# verify-webhook-signature request limits (developer.paypal.com/api/webhooks/v1)
FIELD_RULES: dict[str, tuple[int, str | None]] = {
    "auth_algo": (100, r"[a-zA-Z0-9]+"),
    "cert_url": (500, None),
    "transmission_id": (50, None),
    "transmission_sig": (500, None),
    "transmission_time": (100, None),
    "webhook_id": (50, r"[a-zA-Z0-9]+"),
}


def error_response(
    status: int, message: str, details: list[dict[str, Any]] | None = None, name: str | None = None
) -> Response:
    body = {
        "name": name or ERROR_NAMES.get(status, "INTERNAL_SERVER_ERROR"),
        "message": message,
        "debug_id": secrets.token_hex(7),
        "information_link": "https://developer.paypal.com/api/rest/reference/orders/v2/errors/",
        "details": details or [],
        "links": [],
    }
    response = jsonify(body)
    response.status_code = status
    return response


def _store(collection: str) -> dict[str, Any]:
    return sandbox_state().store("paypal", collection)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _base() -> str:
    return request.host_url.rstrip("/") + "/paypal"


@blueprint.before_request
def _authenticate() -> Response | None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    issued = _store("tokens").get(token)
    if issued and issued[1] > time.time() and issued[0] not in _store("revoked"):
        return None
    return error_response(
        401,
        "Authentication failed due to invalid authentication credentials "
        "or a missing Authorization header.",
    )


def _oauth_error(status: int, error: str, description: str) -> Response:
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    return response


@blueprint.post("/v1/oauth2/token")
def oauth_token() -> Response:
    client_id, secret = _basic_credentials(request.headers.get("Authorization", ""))
    if not client_id or not secret or client_id in _store("revoked"):
        return _oauth_error(401, "invalid_client", "Client Authentication failed")
    if request.form.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "Grant Type is NULL")
    token = "A21AA" + secrets.token_urlsafe(60)
    _store("tokens")[token] = (client_id, time.time() + TOKEN_SECONDS)
    return jsonify(
        {
            "scope": "https://uri.paypal.com/services/payments/payment "
            "https://uri.paypal.com/services/applications/verify-webhook-signature",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-80W284485P519543T",
            "expires_in": TOKEN_SECONDS,
            "nonce": f"{_now()}{secrets.token_urlsafe(32)}",
        }
    )


def _basic_credentials(header: str) -> tuple[str, str]:
    if not header.startswith("Basic "):
        return "", ""
    try:
        client_id, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return client_id, secret


@blueprint.post("/v1/notifications/verify-webhook-signature")
def verify_webhook_signature() -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error_response(
            400,
            "Request is not well-formed, syntactically incorrect, or violates schema.",
            [{"field": "/", "location": "body", "issue": "MALFORMED_REQUEST_JSON"}],
            name="INVALID_REQUEST",
        )
    details = _validation_details(body)
    if details:
        return error_response(
            400, "Invalid request - see details", details, name="VALIDATION_ERROR"
        )
    verified = _signature_holds(body) and not _verification_failing()
    return jsonify(verification_status="SUCCESS" if verified else "FAILURE")


def _verification_failing() -> bool:
    """A PayPal-side fault the control set: FAILURE for genuine events for a while, or for the
    next N postbacks (as when PayPal's verification service lags a certificate rotation)."""
    with sandbox_state().lock:
        failing = _store("verification")
        if failing.get("calls", 0) > 0:
            failing["calls"] -= 1
            return True
        return time.time() < failing.get("until", 0.0)


def _validation_details(body: dict[str, Any]) -> list[dict[str, Any]]:
    details = []
    for name, (limit, pattern) in FIELD_RULES.items():
        issue = _issue(name, body.get(name), limit, pattern)
        if issue:
            details.append(
                {
                    "field": f"/{name}",
                    "value": str(body.get(name) or ""),
                    "location": "body",
                    "issue": issue,
                    "description": f"{name} is missing or invalid.",
                }
            )
    if not isinstance(body.get("webhook_event"), dict):
        details.append(
            {
                "field": "/webhook_event",
                "location": "body",
                "issue": "MISSING_REQUIRED_PARAMETER",
                "description": "webhook_event is missing or not an object.",
            }
        )
    return details


def _issue(name: str, value: Any, limit: int, pattern: str | None) -> str | None:
    if value is None or value == "":
        return "MISSING_REQUIRED_PARAMETER"
    if not isinstance(value, str):
        return "INVALID_PARAMETER_SYNTAX"
    if len(value) > limit:
        return "INVALID_STRING_MAX_LENGTH"
    if pattern and not re.fullmatch(pattern, value):
        return "INVALID_PARAMETER_SYNTAX"
    if name == "transmission_time" and not _is_datetime(value):
        return "INVALID_PARAMETER_SYNTAX"
    return None


def _is_datetime(value: str) -> bool:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


def _signature_holds(body: dict[str, Any]) -> bool:
    cert_id = urlsplit(body["cert_url"]).path.rsplit("/", 1)[-1]
    cert_pem = _store("certs").get(cert_id)
    if body["auth_algo"] != AUTH_ALGO or cert_pem is None:
        return False
    event_bytes = json.dumps(body["webhook_event"]).encode()
    message = paypal_transmission_message(
        body["transmission_id"], body["transmission_time"], body["webhook_id"], event_bytes
    )
    return rsa_sha256_verify(cert_pem, message, body["transmission_sig"])


@blueprint.get("/v1/notifications/certs/<cert_id>")
def certificate(cert_id: str) -> Response:
    cert_pem = _store("certs").get(cert_id)
    if cert_pem is None:
        return _missing()
    return Response(cert_pem, mimetype="text/plain")


def _missing() -> Response:
    return error_response(
        404,
        "The specified resource does not exist.",
        [
            {
                "issue": "INVALID_RESOURCE_ID",
                "description": "Specified resource ID does not exist. Please check the resource ID and try again.",
            }
        ],
    )


@blueprint.get("/v2/<path:collection>/<object_id>")
def retrieve(collection: str, object_id: str) -> Response:
    """`GET /v2/payments/captures/{id}`, `/v2/payments/refunds/{id}`, `/v2/checkout/orders/{id}`."""
    name = COLLECTIONS.get(collection)
    with sandbox_state().lock:
        found = copy.deepcopy(_store(name).get(object_id)) if name else None
    return jsonify(found) if found is not None else _missing()


# -- what a buyer and PayPal would do: the sandbox's control helpers -----------------------------


def _signer() -> dict[str, Any]:
    """The signing key and certificate, made at first use; a sandbox reset rotates them."""
    with sandbox_state().lock:
        signer = _store("signer")
        if not signer:
            signer.update(objects.new_signer())
            _store("certs")[signer["cert_id"]] = signer["cert_pem"]
        return dict(signer)


def transmission(body: str, webhook_id: str) -> dict[str, Any]:
    """The request PayPal would send: the body and its signed transmission headers."""
    signer, transmission_id, sent_at = _signer(), str(uuid.uuid4()), _now()
    message = paypal_transmission_message(transmission_id, sent_at, webhook_id, body.encode())
    return {
        "body": body,
        "headers": {
            "Content-Type": "application/json",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": sent_at,
            "PAYPAL-AUTH-ALGO": AUTH_ALGO,
            "PAYPAL-TRANSMISSION-SIG": rsa_sha256_sign(signer["key_pem"], message),
            "PAYPAL-CERT-URL": f"{_base()}/v1/notifications/certs/{signer['cert_id']}",
            "User-Agent": "PayPal/AUHD-214.0-58843824",
        },
    }


def emit(
    event_type: str, resource_type: str, resource: dict[str, Any], summary: str, webhook_id: str
) -> dict[str, Any]:
    event_id = f"WH-{objects.new_id()}-{objects.new_id()}"
    href = f"{_base()}/v1/notifications/webhooks-events/{event_id}"
    event = {
        "id": event_id,
        "event_version": "1.0",
        "create_time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "resource_type": resource_type,
        "resource_version": "2.0",
        "event_type": event_type,
        "summary": summary,
        "resource": copy.deepcopy(resource),
        "links": [
            {"href": href, "rel": "self", "method": "GET"},
            {"href": f"{href}/resend", "rel": "resend", "method": "POST"},
        ],
    }
    body = json.dumps(event)
    _store("events")[event_id] = body
    return {"event_id": event_id, **transmission(body, webhook_id)}


def purchase(spec: dict[str, Any]) -> dict[str, Any]:
    """A buyer approves an order and the merchant captures it: order, capture, the webhook."""
    currency, now, base = spec.get("currency", "USD"), _now(), _base()
    ids = {
        "order": objects.new_id(),
        "capture": objects.new_id(),
        "payer": objects.new_id(13, objects.PAYER_ALPHABET),
    }
    items = objects.items_from(spec, currency)
    total = objects.total_of(items)
    references = {k: spec[k] for k in ("invoice_id", "custom_id") if spec.get(k)}
    status = spec.get("capture_status", "COMPLETED")
    paid = objects.capture(
        ids, total, currency=currency, status=status, references=references, base=base, now=now
    )
    order = objects.order(
        ids, spec, items=items, paid=paid, references=references, base=base, now=now
    )
    with sandbox_state().lock:
        _store("captures")[ids["capture"]], _store("orders")[ids["order"]] = paid, order
    summary = f"Payment completed for {paid['amount']['value']} {currency}"
    webhook = emit("PAYMENT.CAPTURE.COMPLETED", "capture", paid, summary, _webhook_id(spec))
    return {"order": ids["order"], "capture": ids["capture"], **webhook}


def refund(capture_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The merchant refunds a capture, fully unless `amount` is given: the refund, its webhook."""
    now = _now()
    with sandbox_state().lock:
        paid = _store("captures")[capture_id]
        captured = Decimal(paid["amount"]["value"])
        amount = Decimal(spec.get("amount") or captured)
        found = objects.refund(objects.new_id(), paid, amount, _base(), now)
        _store("refunds")[found["id"]] = found
        paid.update(
            status="REFUNDED" if amount == captured else "PARTIALLY_REFUNDED", update_time=now
        )
    money = found["amount"]
    summary = f"A {money['value']} {money['currency_code']} capture payment was refunded"
    webhook = emit("PAYMENT.CAPTURE.REFUNDED", "refund", found, summary, _webhook_id(spec))
    return {"refund": found["id"], **webhook}


def _webhook_id(spec: dict[str, Any]) -> str:
    return str(spec.get("webhook_id") or DEFAULT_WEBHOOK_ID)


@control.post("/purchases")
def control_purchase() -> Response:
    return jsonify(purchase(request.get_json(force=True) or {}))


@control.post("/captures/<capture_id>/refund")
def control_refund(capture_id: str) -> Response:
    if capture_id not in _store("captures"):
        return _missing()
    return jsonify(refund(capture_id, request.get_json(silent=True) or {}))


@control.post("/events/<event_id>/resend")
def control_resend(event_id: str) -> Response:
    """PayPal's "resend event": the same body in a new, newly signed transmission."""
    body = _store("events").get(event_id)
    if body is None:
        return _missing()
    spec = request.get_json(silent=True) or {}
    return jsonify(transmission(body, _webhook_id(spec)))


@control.post("/verification")
def control_verification() -> Response:
    """`{"fail_for": seconds}` and/or `{"fail_calls": n}`: verify-webhook-signature answers
    FAILURE for genuine events meanwhile; `{}` ends the fault."""
    spec = request.get_json(silent=True) or {}
    with sandbox_state().lock:
        failing = _store("verification")
        failing["until"] = time.time() + float(spec.get("fail_for") or 0)
        failing["calls"] = int(spec.get("fail_calls") or 0)
    return jsonify(status="set", **failing)


@control.post("/clients/<client_id>/revoke")
def control_revoke(client_id: str) -> Response:
    _store("revoked")[client_id] = True
    return jsonify(status="revoked")
