"""Kajabi's public API v1, emulated: OAuth token, contacts, customers, offer grants, purchases.

Shapes from the Kajabi OpenAPI v1.1.0 (api-evangelist/kajabi `openapi/`): JSON:API documents
(`application/vnd.api+json`), `filter[site_id]` + fuzzy `filter[search]` over names and e-mails,
errors `{"errors": [{"status", "title", "detail", "source"}]}`, the token endpoint answering
`{"error": ...}` on failure. Granting an offer to a contact makes the contact a customer; granting an
offer the customer already holds is recorded as a duplicate effect (Kajabi may re-send the welcome
e-mail and re-run automations), revoking affects active offers only.

Control helpers (`/_sandbox/kajabi/...`) do what a buyer and Kajabi would do and return the hook
Kajabi would POST: `{"id", "event": "purchase", "payload": [purchases, offers, customers]}`, unsigned
(Kajabi documents no signature; the target URL carries the secret).
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from devtools.sandbox.app import sandbox_state, set_effect

blueprint = Blueprint("sandbox_kajabi", __name__)
control = Blueprint("sandbox_kajabi_control", __name__)
JSON_API = "application/vnd.api+json"
SITE_ID = "2"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
}


def error_response(status: int, message: str, pointer: str | None = None) -> Response:
    error: dict[str, Any] = {
        "status": str(status),
        "title": TITLES.get(status, "Error"),
        "detail": message,
    }
    if pointer:
        error["source"] = {"pointer": pointer}
    return _document({"errors": [error]}, status)


def _document(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype=JSON_API)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _store(name: str) -> dict[Any, Any]:
    return sandbox_state().store("kajabi", name)


def _new_id() -> str:
    return str(sandbox_state().new_id(numeric=True))


@blueprint.before_request
def _authenticate() -> Response | None:
    if request.path.endswith("/v1/oauth/token"):
        return None
    header = request.headers.get("Authorization", "")
    expires = _store("tokens").get(header[7:]) if header.startswith("Bearer ") else None
    if expires is not None and expires > time.time():
        return None
    return error_response(401, "Authorization header is missing or invalid")


@blueprint.post("/v1/oauth/token")
def token() -> Response:
    form = request.form
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if form.get("grant_type") != "client_credentials" or not client_id or not secret:
        return Response(
            json.dumps({"error": "invalid_request"}), status=400, mimetype="application/json"
        )
    if client_id in _store("revoked"):
        return Response(
            json.dumps({"error": "invalid_client"}), status=401, mimetype="application/json"
        )
    access, lifetime = secrets.token_urlsafe(24), int(_store("settings").get("expires_in", 7200))
    _store("tokens")[access] = time.time() + lifetime
    set_effect("token.issued", access)
    grant = {
        "access_token": access,
        "refresh_token": secrets.token_urlsafe(24),
        "expires_in": lifetime,
    }
    return jsonify({**grant, "token_type": "Bearer"})


def _contact_resource(contact: dict[str, Any]) -> dict[str, Any]:
    attributes = {
        k: contact[k]
        for k in ("name", "email", "subscribed", "external_user_id", "created_at", "updated_at")
    }
    return {
        "id": contact["id"],
        "type": "contacts",
        "attributes": attributes,
        "relationships": {"site": {"data": {"id": SITE_ID, "type": "sites"}}},
    }


def _customer_resource(customer: dict[str, Any]) -> dict[str, Any]:
    attributes = {
        "name": customer["name"],
        "email": customer["email"],
        "avatar": None,
        "external_user_id": None,
        "public_bio": None,
        "public_location": None,
        "public_website": None,
        "socials": None,
        "net_revenue": "0.0",
        "sign_in_count": 0,
        "last_request_at": None,
        "bounced_at": None,
        "created_at": customer["created_at"],
        "updated_at": customer["created_at"],
    }
    return {
        "id": customer["id"],
        "type": "customers",
        "attributes": attributes,
        "links": {"contact": f"{request.host_url}kajabi/v1/contacts/{customer['contact_id']}"},
        "relationships": {
            "site": {"data": {"id": SITE_ID, "type": "sites"}},
            "contact": {"data": {"id": customer["contact_id"], "type": "contacts"}},
        },
    }


def _search(collection: str, view: Any) -> Response:
    wanted = (request.args.get("filter[search]") or "").strip().lower()
    with sandbox_state().lock:
        found = [
            view(r)
            for r in _store(collection).values()
            if wanted in r["email"] or wanted in str(r["name"] or "").lower()
        ]
    size = min(int(request.args.get("page[size]", 25)), 100)
    return _document(
        {
            "data": found[:size],
            "meta": {"total_count": len(found), "total_pages": 1, "current_page": 1},
        }
    )


@blueprint.get("/v1/contacts")
def list_contacts() -> Response:
    return _search("contacts", _contact_resource)


@blueprint.get("/v1/customers")
def list_customers() -> Response:
    return _search("customers", _customer_resource)


def new_contact(email: str, name: str | None) -> dict[str, Any]:
    contact = {
        "id": _new_id(),
        "name": name,
        "email": email.lower(),
        "subscribed": False,
        "external_user_id": None,
        "created_at": _now(),
        "updated_at": _now(),
    }
    _store("contacts")[contact["id"]] = contact
    return contact


@blueprint.post("/v1/contacts")
def create_contact() -> Response:
    data = (request.get_json(silent=True, force=True) or {}).get("data") or {}
    attributes = data.get("attributes") or {}
    site = (((data.get("relationships") or {}).get("site") or {}).get("data") or {}).get("id")
    email = str(attributes.get("email") or "").strip().lower()
    if data.get("type") != "contacts" or site != SITE_ID:
        return error_response(400, "A contact needs type 'contacts' and the site relationship")
    with sandbox_state().lock:
        if "@" not in email or any(c["email"] == email for c in _store("contacts").values()):
            return error_response(
                422, "Email is invalid or has already been taken", "/data/attributes/email"
            )
        contact = new_contact(email, attributes.get("name"))
    set_effect("contact.created", email)
    return _document({"data": _contact_resource(contact)}, 201)


def customer_for(contact: dict[str, Any]) -> dict[str, Any]:
    for customer in _store("customers").values():
        if customer["contact_id"] == contact["id"]:
            return customer
    customer = {
        "id": _new_id(),
        "contact_id": contact["id"],
        "name": contact["name"],
        "email": contact["email"],
        "created_at": _now(),
    }
    _store("customers")[customer["id"]] = customer
    return customer


def _held(customer_id: str) -> list[dict[str, str]]:
    grants = _store("grants")
    return [
        {"type": "offers", "id": o}
        for (c, o), g in grants.items()
        if c == customer_id and g["active"]
    ]


def _offer_ids() -> list[str] | None:
    data = (request.get_json(silent=True, force=True) or {}).get("data")
    if not isinstance(data, list) or not all(
        isinstance(r, dict) and r.get("type") == "offers" for r in data
    ):
        return None
    return [str(r.get("id")) for r in data]


@blueprint.post("/v1/contacts/<contact_id>/relationships/offers")
def grant_offers(contact_id: str) -> Response:
    offers, meta = _offer_ids(), (request.get_json(silent=True, force=True) or {}).get("meta") or {}
    if offers is None:
        return error_response(400, "data must be a list of offer resource identifiers")
    with sandbox_state().lock:
        contact = _store("contacts").get(contact_id)
        if contact is None:
            return error_response(404, "Not found, the resource is unknown")
        customer = customer_for(contact)
        for offer in offers:
            grant = _store("grants").setdefault(
                (customer["id"], offer), {"active": False, "generation": 0}
            )
            # granting what is already held repeats the welcome e-mail and the automations
            set_effect("offer.granted", f"{contact_id}:{offer}:{grant['generation']}")
            grant["active"] = True
            if meta.get("send_customer_welcome_email", True):
                _store("emails").setdefault(contact["email"], []).append(offer)
        held = _held(customer["id"])
    return _document({"data": held, "links": {"self": request.url}})


@blueprint.get("/v1/customers/<customer_id>/relationships/offers")
def customer_offers(customer_id: str) -> Response:
    with sandbox_state().lock:
        if customer_id not in _store("customers"):
            return error_response(404, "Not found, the resource is unknown")
        return _document({"data": _held(customer_id)})


@blueprint.delete("/v1/customers/<customer_id>/relationships/offers")
def revoke_offers(customer_id: str) -> Response:
    offers = _offer_ids()
    if offers is None:
        return error_response(400, "data must be a list of offer resource identifiers")
    with sandbox_state().lock:
        if customer_id not in _store("customers"):
            return error_response(404, "Not found, the resource is unknown")
        for offer in offers:
            grant = _store("grants").get((customer_id, offer))
            if grant and grant["active"]:  # only active offers are affected
                set_effect("offer.revoked", f"{customer_id}:{offer}:{grant['generation']}")
                grant.update(active=False, generation=grant["generation"] + 1)
        return _document({"data": _held(customer_id)})


@blueprint.get("/v1/purchases/<purchase_id>")
def show_purchase(purchase_id: str) -> Response:
    purchase = _store("purchases").get(purchase_id)
    if purchase is None:
        return error_response(404, "Not found")
    return _document({"data": purchase})


# -- what a buyer and Kajabi would do: the sandbox's control helpers --------------------------


def _purchase_resource(
    customer: dict[str, Any], offer: str, spec: dict[str, Any]
) -> dict[str, Any]:
    attributes = {
        "amount_in_cents": int(spec.get("amount_in_cents", 1000)),
        "payment_type": "single",
        "multipay_payments_made": None,
        "opt_in": False,
        "raw_extra_contact_information": {},
        "currency": spec.get("currency", "USD"),
        "effective_start_at": None,
        "cardholder_name": None,
        "billing_address_zip": None,
        "deactivated_at": None,
        "deactivation_reason": None,
        "coupon_code": None,
        "source": None,
        "referrer": None,
        "quantity": 1,
        "created_at": _now(),
        "updated_at": _now(),
    }
    relationships = {
        "customer": {"data": {"id": customer["id"], "type": "customers"}},
        "offer": {"data": {"id": offer, "type": "offers"}},
        "products": {"data": []},
    }
    return {
        "id": _new_id(),
        "type": "purchases",
        "attributes": attributes,
        "relationships": relationships,
    }


def _offer_resource(offer: str, spec: dict[str, Any]) -> dict[str, Any]:
    price = int(spec.get("amount_in_cents", 1000))
    attributes = {
        "title": spec.get("title", "Kajabi Test Offer"),
        "description": None,
        "internal_title": None,
        "currency": "USD",
        "price_in_cents": price,
        "payment_type": "single",
        "token": "n8NtoHUZ",
        "image_url": None,
        "payment_method": "stripe_and_paypal",
        "price_description": f"${price / 100:.2f} USD",
        "recurring_offer": False,
        "checkout_url": f"https://creator.mykajabi.com/offers/{offer}",
        "subscription": False,
        "one_time": True,
        "single": True,
        "free": price == 0,
    }
    relationships = {
        "site": {"data": {"id": SITE_ID, "type": "sites"}},
        "products": {"data": []},
        "forms": {"data": []},
    }
    return {"id": offer, "type": "offers", "attributes": attributes, "relationships": relationships}


@control.post("/purchases")
def control_purchase() -> Response:
    """A checkout on a Kajabi offer: contact, customer, the grant, the purchase; the hook."""
    spec = request.get_json(force=True)
    offer, email = str(spec.get("offer_id", "9001")), str(spec["email"]).lower()
    with sandbox_state().lock:
        contact = next((c for c in _store("contacts").values() if c["email"] == email), None)
        customer = customer_for(contact or new_contact(email, spec.get("name")))
        grant = _store("grants").setdefault(
            (customer["id"], offer), {"active": False, "generation": 0}
        )
        grant["active"] = True
        purchase = _purchase_resource(customer, offer, spec)
        _store("purchases")[purchase["id"]] = purchase
        payload = [purchase, _offer_resource(offer, spec), _customer_resource(customer)]
    body = json.dumps({"id": purchase["id"], "event": "purchase", "payload": payload})
    return jsonify(body=body, headers={"Content-Type": "application/json"}, purchase=purchase["id"])


@control.post("/purchases/<purchase_id>/deactivate")
def control_deactivate(purchase_id: str) -> Response:
    purchase = _store("purchases").get(purchase_id)
    if purchase is None:
        abort(404)
    purchase["attributes"].update(
        deactivated_at=_now(), deactivation_reason="refunded", updated_at=_now()
    )
    return jsonify(status="deactivated")


@control.post("/clients/<client_id>/revoke")
def control_revoke(client_id: str) -> Response:
    _store("revoked")[client_id] = True
    _store("tokens").clear()
    return jsonify(status="revoked")
