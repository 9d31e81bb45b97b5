"""Stripe, emulated: the read endpoints our fetch uses, `/v1/events`, refunds, and the webhooks.

Objects are built from Stripe's own published fixtures (stripe/openapi `fixtures3.json`, MIT,
copied to `data/stripe_objects.json`) with realistic values filled in, so every object carries
every field a real one does. Auth, errors and expansion follow docs.stripe.com/api: secret key as
Basic user name or Bearer token, `{"error": {"type", "code", "message", "param"}}` bodies,
`expand[]` (dotted paths up to four levels) and list objects with `has_more`.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from devtools.sandbox.app import sandbox_state
from devtools.sandbox.state import SandboxState

blueprint = Blueprint("sandbox_stripe", __name__)
control = Blueprint("sandbox_stripe_control", __name__)
API_VERSION = "2024-06-20"
COLLECTIONS = {
    "checkout/sessions": "checkout.session",
    "charges": "charge",
    "payment_intents": "payment_intent",
    "customers": "customer",
    "disputes": "dispute",
    "refunds": "refund",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "prices": "price",
}
# which id field of an object points to which collection, for expansion
EXPANDABLE = {
    "customer": "customer",
    "payment_intent": "payment_intent",
    "latest_charge": "charge",
    "charge": "charge",
    "subscription": "subscription",
    "invoice": "invoice",
}


@cache
def fixtures() -> dict[str, Any]:
    text = resources.files("devtools.sandbox").joinpath("data/stripe_objects.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def template(kind: str, **overrides: Any) -> dict[str, Any]:
    obj = copy.deepcopy(fixtures()[kind])
    obj.update(overrides)
    return obj


def error_response(status: int, message: str) -> Response:
    kinds = {401: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_error"}
    body = {"error": {"type": kinds.get(status, "api_error"), "message": message}}
    if status == 429:
        body["error"]["code"] = "rate_limit"
        body["error"]["message"] = "Request rate limit exceeded. Retry after a short wait."
    response = jsonify(body)
    response.status_code = status
    if status >= 500 or status == 429:
        response.headers["Stripe-Should-Retry"] = "true"
    return response


def _state() -> SandboxState:
    return sandbox_state()


def objects() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = _state().store("stripe", "objects")
    return found


@blueprint.before_request
def _authenticate() -> Response | None:
    header = request.headers.get("Authorization", "")
    key = ""
    if header.startswith("Basic "):
        key = base64.b64decode(header[6:]).decode(errors="replace").split(":", 1)[0]
    elif header.startswith("Bearer "):
        key = header[7:]
    if not key:
        return error_response(
            401,
            "You did not provide an API key. You need to provide your API "
            "key in the Authorization header, using Bearer auth.",
        )
    if not key.startswith(("sk_test_", "rk_test_")) or key in _state().store("stripe", "revoked"):
        return error_response(401, f"Invalid API Key provided: {key[:8]}****{key[-4:]}")
    return None


def _missing(kind: str, object_id: str) -> Response:
    response = jsonify(
        error={
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": f"No such {kind}: '{object_id}'",
            "param": "id",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        }
    )
    response.status_code = 404
    return response


def _expand(obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    for path in paths:
        _expand_path(obj, path.split(".")[:4])
    return obj


def _expand_path(obj: Any, parts: list[str]) -> None:
    if not parts or not isinstance(obj, dict):
        return
    head, rest = parts[0], parts[1:]
    if head == "data" and isinstance(obj.get("data"), list):
        for item in obj["data"]:
            _expand_path(item, rest)
        return
    value = obj.get(head)
    if isinstance(value, str) and value in objects():
        obj[head] = copy.deepcopy(objects()[value])
    _expand_path(obj.get(head), rest)


@blueprint.get("/v1/<path:collection>/<object_id>")
def retrieve(collection: str, object_id: str) -> Response:
    kind = COLLECTIONS.get(collection)
    if kind is None:
        abort(404)
    obj = objects().get(object_id)
    if obj is None or obj.get("object") != kind:
        return _missing(kind, object_id)
    return jsonify(_expand(obj, request.args.getlist("expand[]")))


@blueprint.get("/v1/checkout/sessions")
def list_sessions() -> Response:
    wanted = request.args.get("payment_intent")
    found = [
        o
        for o in objects().values()
        if o.get("object") == "checkout.session"
        and (wanted is None or o.get("payment_intent") == wanted)
    ]
    page = {
        "object": "list",
        "url": "/v1/checkout/sessions",
        "has_more": False,
        "data": sorted(found, key=lambda o: -o["created"])[: int(request.args.get("limit", 10))],
    }
    return jsonify(_expand(page, request.args.getlist("expand[]")))


@blueprint.get("/v1/events")
def list_events() -> Response:
    events = sorted(
        _state().store("stripe", "events").values(), key=lambda e: (-e["created"], e["id"])
    )
    created_gte = request.args.get("created[gte]", type=int)
    if created_gte is not None:
        events = [e for e in events if e["created"] >= created_gte]
    if request.args.get("type"):
        events = [e for e in events if e["type"] == request.args["type"]]
    after = request.args.get("starting_after")
    if after:
        ids = [e["id"] for e in events]
        events = events[ids.index(after) + 1 :] if after in ids else []
    limit = min(int(request.args.get("limit", 10)), 100)
    return jsonify(
        object="list", url="/v1/events", has_more=len(events) > limit, data=events[:limit]
    )


@blueprint.post("/v1/refunds")
def create_refund() -> Response:
    key = request.headers.get("Idempotency-Key")
    remembered = _state().idempotency.get(("stripe", key)) if key else None
    if remembered is not None:
        return _replayed(remembered)
    charge = objects().get(request.form.get("charge", ""))
    if charge is None:
        return _missing("charge", request.form.get("charge", ""))
    event = refund_charge(charge["id"])
    refund = objects()[event["data"]["object"]["refunds"]["data"][0]["id"]]
    if key:
        _state().idempotency[("stripe", key)] = (200, refund)
    return jsonify(refund)


def _replayed(remembered: tuple[int, Any]) -> Response:
    response = jsonify(remembered[1])
    response.status_code = remembered[0]
    response.headers["Idempotent-Replayed"] = "true"
    return response


# -- what a real customer and a real Stripe would do: the sandbox's control helpers ----------


def _save(obj: dict[str, Any]) -> dict[str, Any]:
    objects()[obj["id"]] = obj
    return obj


def emit(
    event_type: str, obj: dict[str, Any], previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    state = _state()
    data: dict[str, Any] = {"object": copy.deepcopy(obj)}
    if previous:
        data["previous_attributes"] = previous
    event = template(
        "event",
        id=state.new_id("evt"),
        api_version=API_VERSION,
        created=int(time.time()),
        data=data,
        livemode=False,
        pending_webhooks=1,
        type=event_type,
        request={"id": state.new_id("req"), "idempotency_key": None},
    )
    state.store("stripe", "events")[event["id"]] = event
    return event


def purchase(spec: dict[str, Any]) -> dict[str, Any]:
    """A completed checkout: customer, payment intent, charge, session with its line items."""
    state, now = _state(), int(time.time())
    email, price_id = spec["email"], spec.get("price", "price_1PgafmB7WZ01zgkW6dKueIc5")
    amount, currency = int(spec.get("amount", 4900)), spec.get("currency", "usd")
    paid = spec.get("payment_status", "paid") == "paid"
    customer = _save(
        template(
            "customer",
            id=state.new_id("cus"),
            email=email,
            name=spec.get("name"),
            created=now,
            discount=None,
        )
    )
    charge = _save(
        template(
            "charge",
            id=state.new_id("ch"),
            amount=amount,
            amount_captured=amount if paid else 0,
            captured=paid,
            paid=paid,
            status="succeeded" if paid else "pending",
            currency=currency,
            customer=customer["id"],
            created=now,
            receipt_email=email,
            billing_details={
                **fixtures()["charge"]["billing_details"],
                "email": email,
                "name": spec.get("name"),
            },
            refunds={"object": "list", "data": [], "has_more": False, "url": "/v1/refunds"},
        )
    )
    intent = _save(
        template(
            "payment_intent",
            id=state.new_id("pi"),
            amount=amount,
            amount_received=amount if paid else 0,
            currency=currency,
            customer=customer["id"],
            latest_charge=charge["id"],
            created=now,
            status="succeeded" if paid else "processing",
            canceled_at=None,
            last_payment_error=None,
            next_action=None,
        )
    )
    charge["payment_intent"] = intent["id"]
    session_id = str(state.new_id("cs_test")).replace("cs_test_", "cs_test_a1")
    price = template(
        "price",
        id=price_id,
        unit_amount=amount,
        currency=currency,
        type="one_time",
        recurring=None,
        created=now,
    )
    item = {
        "id": state.new_id("li"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": currency,
        "description": spec.get("product_name", "Creator Course"),
        "price": price,
        "quantity": 1,
    }
    session = _save(
        template(
            "checkout.session",
            id=session_id,
            amount_subtotal=amount,
            amount_total=amount,
            currency=currency,
            customer=customer["id"],
            created=now,
            expires_at=now + 86400,
            customer_details={
                **fixtures()["checkout.session"]["customer_details"],
                "email": email,
                "name": spec.get("name"),
            },
            payment_intent=intent["id"],
            payment_status="paid" if paid else "unpaid",
            status="complete",
            mode="payment",
            line_items={
                "object": "list",
                "data": [item],
                "has_more": False,
                "url": f"/v1/checkout/sessions/{session_id}/line_items",
            },
        )
    )
    event = emit("checkout.session.completed", _without_line_items(session))
    return {"session": session["id"], "charge": charge["id"], "event": event}


def _without_line_items(session: dict[str, Any]) -> dict[str, Any]:
    # line_items is includable: never in a webhook, only when expanded
    return {k: v for k, v in session.items() if k != "line_items"}


def refund_charge(charge_id: str) -> dict[str, Any]:
    state = _state()
    charge = objects()[charge_id]
    refund = _save(
        template(
            "refund",
            id=state.new_id("re"),
            amount=charge["amount"],
            charge=charge_id,
            payment_intent=charge.get("payment_intent"),
            created=int(time.time()),
            status="succeeded",
        )
    )
    charge.update(refunded=True, amount_refunded=charge["amount"])
    charge["refunds"] = {
        "object": "list",
        "data": [refund],
        "has_more": False,
        "url": "/v1/refunds",
    }
    return emit("charge.refunded", charge, previous={"refunded": False, "amount_refunded": 0})


def settle_async(session_id: str, succeeded: bool) -> dict[str, Any]:
    session = objects()[session_id]
    intent = objects()[session["payment_intent"]]
    charge = objects()[intent["latest_charge"]]
    if succeeded:
        session["payment_status"] = "paid"
        intent.update(status="succeeded", amount_received=intent["amount"])
        charge.update(
            paid=True, captured=True, status="succeeded", amount_captured=charge["amount"]
        )
        kind = "checkout.session.async_payment_succeeded"
    else:
        intent.update(status="requires_payment_method")
        charge.update(status="failed")
        kind = "checkout.session.async_payment_failed"
    return emit(kind, _without_line_items(session))


def open_dispute(charge_id: str) -> dict[str, Any]:
    state = _state()
    charge = objects()[charge_id]
    dispute = _save(
        template(
            "dispute",
            id=state.new_id("dp"),
            amount=charge["amount"],
            charge=charge_id,
            payment_intent=charge.get("payment_intent"),
            created=int(time.time()),
            reason="fraudulent",
            status="needs_response",
        )
    )
    charge["disputed"] = True
    return emit("charge.dispute.created", dispute)


@control.post("/purchases")
def control_purchase() -> Response:
    specs = request.get_json(force=True)
    if isinstance(specs, dict):
        return jsonify(purchase(specs))
    return jsonify(purchases=[purchase(spec) for spec in specs])


@control.post("/charges/<charge_id>/refund")
def control_refund(charge_id: str) -> Response:
    if charge_id not in objects():
        abort(404)
    return jsonify(event=refund_charge(charge_id))


@control.post("/charges/<charge_id>/dispute")
def control_dispute(charge_id: str) -> Response:
    if charge_id not in objects():
        abort(404)
    return jsonify(event=open_dispute(charge_id))


@control.post("/sessions/<session_id>/<outcome>")
def control_async(session_id: str, outcome: str) -> Response:
    if session_id not in objects() or outcome not in ("succeed", "fail"):
        abort(404)
    return jsonify(event=settle_async(session_id, outcome == "succeed"))


@control.post("/keys/<key>/revoke")
def control_revoke(key: str) -> Response:
    _state().store("stripe", "revoked")[key] = True
    return jsonify(status="revoked")
