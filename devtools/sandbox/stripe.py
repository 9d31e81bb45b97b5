"""Stripe, emulated: the read endpoints our fetch uses, `/v1/events`, refunds, and the webhooks.

Auth, errors and expansion follow docs.stripe.com/api: secret key as Basic user name or Bearer
token, `{"error": {"type", "code", "message", "param"}}` bodies, `expand[]` (dotted paths up to four
levels) and list objects with `has_more`. A checkout session's `line_items` is includable: absent
unless expanded, and then only its first page (10 items, Stripe's "first handful"); the whole list
pages at `GET /v1/checkout/sessions/{id}/line_items` (`limit` 1 to 100, default 10,
`starting_after`, `ending_before`; docs.stripe.com/api/checkout/sessions/line_items).
The objects and events live in `_stripe_objects.py`, subscriptions in `_stripe_billing.py`.

Control (`/_sandbox/stripe/…`): purchases (one line item, or `items`), async payments, refunds,
disputes, subscriptions and their first payment (with `at`, a frozen clock as a Stripe test clock
has), revoked keys, and expansions the API is told to ignore (to play an API that dropped one).
"""

from __future__ import annotations

import base64
import copy
import time
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from devtools.sandbox._stripe_billing import pay_first_invoice, subscribe
from devtools.sandbox._stripe_objects import (
    API_VERSION,
    emit,
    fixtures,
    objects,
    save,
    state,
    template,
)

__all__ = ["API_VERSION", "blueprint", "control", "error_response", "fixtures"]
blueprint = Blueprint("sandbox_stripe", __name__)
control = Blueprint("sandbox_stripe_control", __name__)
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
EXPANDED_PAGE = 10  # an expanded includable list holds its first page, as Stripe's does


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
    if not key.startswith(("sk_test_", "rk_test_")) or key in state().store("stripe", "revoked"):
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


def _expansions() -> list[str]:
    """The `expand[]` paths asked for, less those the sandbox was told to ignore."""
    ignored = state().store("stripe", "ignored_expansions")
    return [p for p in request.args.getlist("expand[]") if p not in ignored]


def _shown(obj: dict[str, Any], paths: list[str], prefix: str = "") -> dict[str, Any]:
    """An object as the API shows it: an includable list (a session's `line_items`) only when
    expanded, and then only its first page."""
    if obj.get("object") != "checkout.session" or "line_items" not in obj:
        return obj
    shown = {k: v for k, v in obj.items() if k != "line_items"}
    if f"{prefix}line_items" in paths:
        items = obj["line_items"]["data"]
        shown["line_items"] = {
            **obj["line_items"],
            "data": items[:EXPANDED_PAGE],
            "has_more": len(items) > EXPANDED_PAGE,
        }
    return shown


@blueprint.get("/v1/checkout/sessions/<session_id>/line_items")
def list_line_items(session_id: str) -> Response:
    session = objects().get(session_id)
    if session is None or session.get("object") != "checkout.session":
        return _missing("checkout.session", session_id)
    limit = request.args.get("limit", 10, type=int)
    if not 1 <= limit <= 100:
        return _invalid("limit", "This value must be greater than or equal to 1 and less than 100.")
    items = session["line_items"]["data"]
    ids = [item["id"] for item in items]
    after, before = request.args.get("starting_after"), request.args.get("ending_before")
    if after:
        start = ids.index(after) + 1 if after in ids else len(ids)
        page, more = items[start : start + limit], start + limit < len(items)
    elif before:
        end = ids.index(before) if before in ids else 0
        page, more = items[max(0, end - limit) : end], end - limit > 0
    else:
        page, more = items[:limit], limit < len(items)
    url = f"/v1/checkout/sessions/{session_id}/line_items"
    return jsonify(_expand({"object": "list", "data": page, "has_more": more, "url": url}, []))


def _invalid(param: str, message: str) -> Response:
    response = jsonify(error={"type": "invalid_request_error", "message": message, "param": param})
    response.status_code = 400
    return response


@blueprint.get("/v1/<path:collection>/<object_id>")
def retrieve(collection: str, object_id: str) -> Response:
    kind = COLLECTIONS.get(collection)
    if kind is None:
        abort(404)
    obj = objects().get(object_id)
    if obj is None or obj.get("object") != kind:
        return _missing(kind, object_id)
    paths = _expansions()
    return jsonify(_expand(_shown(obj, paths), paths))


@blueprint.get("/v1/checkout/sessions")
def list_sessions() -> Response:
    wanted = request.args.get("payment_intent")
    paths = _expansions()
    found = [
        _shown(o, paths, prefix="data.")
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
    return jsonify(_expand(page, paths))


@blueprint.get("/v1/events")
def list_events() -> Response:
    events = sorted(
        state().store("stripe", "events").values(), key=lambda e: (-e["created"], e["id"])
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
    remembered = state().idempotency.get(("stripe", key)) if key else None
    if remembered is not None:
        return _replayed(remembered)
    charge = objects().get(request.form.get("charge", ""))
    if charge is None:
        return _missing("charge", request.form.get("charge", ""))
    event = refund_charge(charge["id"])
    refund = objects()[event["data"]["object"]["refunds"]["data"][0]["id"]]
    if key:
        state().idempotency[("stripe", key)] = (200, refund)
    return jsonify(refund)


def _replayed(remembered: tuple[int, Any]) -> Response:
    response = jsonify(remembered[1])
    response.status_code = remembered[0]
    response.headers["Idempotent-Replayed"] = "true"
    return response


# -- what a real customer and a real Stripe would do: the sandbox's control helpers ----------


def purchase(spec: dict[str, Any]) -> dict[str, Any]:
    """A completed checkout: customer, payment intent, charge, session with its line items (one
    for `price`, or one per entry of `items`: `{"price", "amount", "name"}`)."""
    sandbox, now = state(), int(time.time())
    email, currency = spec["email"], spec.get("currency", "usd")
    items = [_line_item(entry, currency, now) for entry in _item_specs(spec)]
    amount = sum(item["amount_total"] for item in items)
    paid = spec.get("payment_status", "paid") == "paid"
    customer = save(
        template(
            "customer",
            id=sandbox.new_id("cus"),
            email=email,
            name=spec.get("name"),
            created=now,
            discount=None,
        )
    )
    charge = save(
        template(
            "charge",
            id=sandbox.new_id("ch"),
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
    intent = save(
        template(
            "payment_intent",
            id=sandbox.new_id("pi"),
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
    session_id = str(sandbox.new_id("cs_test")).replace("cs_test_", "cs_test_a1")
    session = save(
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
                "data": items,
                "has_more": False,
                "url": f"/v1/checkout/sessions/{session_id}/line_items",
            },
        )
    )
    event = emit("checkout.session.completed", _without_line_items(session))
    return {"session": session["id"], "charge": charge["id"], "event": event}


def _item_specs(spec: dict[str, Any]) -> list[dict[str, Any]]:
    if spec.get("items"):
        return list(spec["items"])
    return [
        {
            "price": spec.get("price", "price_1PgafmB7WZ01zgkW6dKueIc5"),
            "amount": spec.get("amount", 4900),
            "name": spec.get("product_name", "Creator Course"),
        }
    ]


def _line_item(entry: dict[str, Any], currency: str, now: int) -> dict[str, Any]:
    amount = int(entry.get("amount", 4900))
    price = template(
        "price",
        id=entry["price"],
        unit_amount=amount,
        currency=currency,
        type="one_time",
        recurring=None,
        created=now,
    )
    return {
        "id": state().new_id("li"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": currency,
        "description": entry.get("name", "Creator Course"),
        "price": price,
        "quantity": 1,
    }


def _without_line_items(session: dict[str, Any]) -> dict[str, Any]:
    # line_items is includable: never in a webhook, only when expanded
    return {k: v for k, v in session.items() if k != "line_items"}


def refund_charge(charge_id: str) -> dict[str, Any]:
    sandbox = state()
    charge = objects()[charge_id]
    refund = save(
        template(
            "refund",
            id=sandbox.new_id("re"),
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
    sandbox = state()
    charge = objects()[charge_id]
    dispute = save(
        template(
            "dispute",
            id=sandbox.new_id("dp"),
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
    state().store("stripe", "revoked")[key] = True
    return jsonify(status="revoked")


@control.post("/subscriptions")
def control_subscribe() -> Response:
    spec: dict[str, Any] = request.get_json(force=True) or {}
    if not isinstance(spec.get("email"), str):
        abort(400)
    return jsonify(subscribe(spec, int(spec.get("at") or time.time())))


@control.post("/subscriptions/<sub_id>/pay")
def control_pay(sub_id: str) -> Response:
    found = objects().get(sub_id)
    if found is None or found.get("object") != "subscription":
        abort(404)
    spec: dict[str, Any] = request.get_json(silent=True) or {}
    return jsonify(events=pay_first_invoice(sub_id, int(spec.get("at") or time.time())))


@control.post("/expansions/ignore")
def control_ignore_expansions() -> Response:
    """From now on the API answers as if these `expand[]` paths had not been asked for."""
    paths = (request.get_json(force=True) or {}).get("paths") or []
    state().store("stripe", "ignored_expansions").update(dict.fromkeys(paths, True))
    return jsonify(ignored=sorted(state().store("stripe", "ignored_expansions")))
