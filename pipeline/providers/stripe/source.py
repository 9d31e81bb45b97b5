"""Stripe as a source: signed webhooks in, the full object fetched, canonical events out.

API facts (docs.stripe.com/api, stripe-python): secret key as HTTP Basic username; GET objects at
`/v1/<collection>/<id>` with `expand[]`; checkout line items only when expanded. The webhook is a
pointer: we always re-read the object, so an out-of-order or stale event acts on current state.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, fields

from pipeline.delivery.http import ApiClient
from pipeline.errors import BadPayload, ContractError, PermanentError
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, Identified, SourceContext, SourceProvider, Verdict
from pipeline.providers.shared import shape
from pipeline.signatures.timestamped_hmac import TimestampedHmac
from schemas.contracts.stripe import CONTRACTS, VERSIONS

_ID = re.compile(r"^[a-z]{2,5}_[A-Za-z0-9_]{1,250}$")
CHECKOUT_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
)
SUBSCRIPTION_TYPES = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
CANCELED_STATES = ("canceled", "unpaid", "incomplete_expired")


class StripeOptions(Schema):
    class Meta:
        unknown = RAISE

    api_key = fields.Str(required=True)
    api_version = fields.Str(load_default=None)


def api(ctx: SourceContext) -> ApiClient:
    headers = {}
    if ctx.source.options.get("api_version"):
        headers["Stripe-Version"] = ctx.source.options["api_version"]
    return ApiClient(
        provider="stripe",
        base_url=ctx.source.api_base or "https://api.stripe.com",
        session=ctx.http,
        auth=(ctx.source.options["api_key"], ""),
        headers=headers,
    )


def object_id(value: Any) -> str:
    """An id from a field that holds either the id or the expanded object; validated."""
    found = value.get("id") if isinstance(value, dict) else value
    if not isinstance(found, str) or not _ID.match(found):
        raise ContractError("a Stripe object id is missing or malformed", reason="bad_object_id")
    return found


class StripeSource(SourceProvider):
    name = "stripe"
    # `Stripe-Signature: t=…,v1=…` (docs.stripe.com/webhooks/signatures; stripe-python `_webhook.py`)
    signature = TimestampedHmac(header="Stripe-Signature")
    stored_headers = ("Stripe-Signature", "Content-Type", "User-Agent")
    needs_api_base = False
    default_api_base = "https://api.stripe.com"
    default_on_unknown_fields = "warn"
    options_schema = StripeOptions
    lanes = dict.fromkeys(CONTRACTS, "payments")
    contracts = CONTRACTS
    contract_versions = VERSIONS

    def identify(self, payload: Any, body: bytes, headers: Any) -> Identified:
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            raise BadPayload("missing_event_id", "A Stripe event needs a string 'id'.")
        if not isinstance(payload.get("type"), str):
            raise BadPayload("missing_event_type", "A Stripe event needs a string 'type'.")
        return Identified(external_id=payload["id"], provider_type=payload["type"])

    def verify(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Verdict | None:
        if event.provider_type == "checkout.session.completed":
            session = payload["data"]["object"]
            # absent under contract v2: the fetched session decides finality then
            if session.get("payment_status") == "unpaid":
                # delayed methods (bank debits, 3-D Secure pending) finish with async_payment_*
                return Verdict("wait", "payment_not_final")
        return None

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched:
        obj = payload["data"]["object"]
        version = int(payload["created"]) * 1000
        client = api(ctx)
        kind = event.provider_type
        if kind in CHECKOUT_TYPES:
            session_id = object_id(obj)
            params = [("expand[]", "line_items"), ("expand[]", "payment_intent.latest_charge")]
            found = client.request(
                "GET", f"/v1/checkout/sessions/{session_id}", params=params
            ).json()
            return Fetched(found, f"stripe:checkout.session:{session_id}", version)
        if kind == "charge.refunded":
            charge_id = object_id(obj)
            charge = client.request("GET", f"/v1/charges/{charge_id}").json()
            charge["checkout_session"] = _session_for(client, charge.get("payment_intent"))
            return Fetched(charge, f"stripe:charge:{charge_id}", version)
        if kind == "charge.dispute.created":
            dispute_id = object_id(obj)
            dispute = client.request("GET", f"/v1/disputes/{dispute_id}").json()
            dispute["checkout_session"] = _session_for(client, dispute.get("payment_intent"))
            return Fetched(dispute, f"stripe:dispute:{dispute_id}", version)
        if kind in SUBSCRIPTION_TYPES:
            sub_id = object_id(obj)
            params = [("expand[]", "customer")]
            sub = client.request("GET", f"/v1/subscriptions/{sub_id}", params=params).json()
            return Fetched(sub, f"stripe:subscription:{sub_id}", version)
        invoice_id = object_id(obj)
        invoice = client.request("GET", f"/v1/invoices/{invoice_id}").json()
        return Fetched(invoice, f"stripe:invoice:{invoice_id}", version)

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        assert fetched is not None
        obj, kind = fetched.object, event.provider_type
        base = {"source": event.source, "provider": self.name, "occurred_at": payload["created"]}
        if kind in CHECKOUT_TYPES:
            return _checkout(kind, obj, base)
        if kind == "charge.refunded":
            return _refund(obj, base)
        if kind == "charge.dispute.created":
            return _dispute(obj, base)
        if kind in SUBSCRIPTION_TYPES:
            return _subscription(kind, obj, base)
        return _invoice(kind, obj, base)


def _session_for(client: ApiClient, payment_intent: Any) -> dict[str, Any] | None:
    """The checkout session behind a payment intent, with its line items (what was bought)."""
    if not payment_intent:
        return None
    params = [("payment_intent", object_id(payment_intent)), ("expand[]", "data.line_items")]
    sessions = client.request("GET", "/v1/checkout/sessions", params=params).json()
    data = sessions.get("data") or []
    return data[0] if data else None


def _items(session: dict[str, Any] | None) -> list[dict[str, Any]]:
    line_items = ((session or {}).get("line_items") or {}).get("data") or []
    items = []
    for line in line_items:
        price = line.get("price") or {}
        if not price.get("id"):
            raise ContractError(
                "a checkout line item has no price", reason="line_item_without_price"
            )
        items.append(
            {
                "product": price["id"],
                "name": line.get("description"),
                "quantity": line.get("quantity") or 1,
                "amount": line.get("amount_total"),
            }
        )
    return items


def _session_contact(session: dict[str, Any]) -> dict[str, Any]:
    details = session.get("customer_details") or {}
    email = details.get("email") or session.get("customer_email")
    customer = session.get("customer")
    return shape.contact(
        email,
        name=details.get("name"),
        external_ids={"stripe_customer": object_id(customer) if customer else ""},
    )


def _checkout(kind: str, session: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | Verdict:
    if kind == "checkout.session.async_payment_failed":
        return shape.event(
            "purchase.failed",
            key=f"stripe:{session['id']}",
            **base,
            contact=_session_contact(session),
            purchase=_purchase(session, reason="async_payment_failed"),
        )
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return Verdict("wait", "payment_not_final")
    intent = session.get("payment_intent")
    charge = intent.get("latest_charge") if isinstance(intent, dict) else None
    if isinstance(charge, dict) and charge.get("refunded"):
        # the refund webhook may arrive first; current state says there is nothing to grant
        return Verdict("ignore", "refunded_before_processing")
    return shape.event(
        "purchase.completed",
        key=f"stripe:{session['id']}",
        **base,
        contact=_session_contact(session),
        purchase=_purchase(session),
    )


def _purchase(session: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    if session.get("amount_total") is None or not session.get("currency"):
        raise ContractError("the checkout session has no amount or currency", reason="no_amount")
    intent = session.get("payment_intent")
    return {
        "id": session["id"],
        "payment_id": object_id(intent) if intent else None,
        "amount": session["amount_total"],
        "currency": session["currency"].lower(),
        "items": _items(session),
        "reason": reason,
    }


def _refund(charge: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | Verdict:
    if not charge.get("refunded"):
        return Verdict("ignore", "partial_refund")
    session = charge.get("checkout_session")
    if session is None:
        return Verdict("ignore", "no_checkout_session")
    purchase = _purchase(session, reason="refunded")
    purchase["amount"] = charge.get("amount_refunded", purchase["amount"])
    return shape.event(
        "purchase.refunded",
        key=f"stripe:{charge['id']}:refunded",
        **base,
        contact=_session_contact(session),
        purchase=purchase,
    )


def _dispute(dispute: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | Verdict:
    session = dispute.get("checkout_session")
    if session is None:
        return Verdict("ignore", "no_checkout_session")
    purchase = _purchase(session, reason=dispute.get("reason") or "disputed")
    return shape.event(
        "purchase.disputed",
        key=f"stripe:{dispute['id']}",
        **base,
        contact=_session_contact(session),
        purchase=purchase,
    )


def _subscription_contact(customer: Any) -> dict[str, Any]:
    if not isinstance(customer, dict):
        raise PermanentError("the subscription's customer was not expanded", reason="no_customer")
    return shape.contact(
        customer.get("email"),
        name=customer.get("name"),
        external_ids={"stripe_customer": object_id(customer)},
    )


def _subscription(kind: str, sub: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | Verdict:
    status = sub["status"]
    if kind == "customer.subscription.created":
        if status not in ("active", "trialing"):
            return Verdict("wait", "subscription_not_active")
        canonical_type = "subscription.started"
    elif status in CANCELED_STATES:
        canonical_type = "subscription.canceled"
    else:
        return Verdict("ignore", "subscription_still_active")
    items = [
        {"product": (item.get("price") or {}).get("id", ""), "quantity": item.get("quantity") or 1}
        for item in ((sub.get("items") or {}).get("data") or [])
    ]
    return shape.event(
        canonical_type,
        key=f"stripe:{sub['id']}:{canonical_type}",
        **base,
        contact=_subscription_contact(sub.get("customer")),
        subscription={"id": sub["id"], "status": status, "items": items},
    )


def _invoice(kind: str, invoice: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | Verdict:
    subscription = invoice.get("subscription") or (
        ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    )
    if not subscription:
        return Verdict("ignore", "not_a_subscription_invoice")
    if kind == "invoice.payment_failed":
        canonical_type = "subscription.payment_failed"
    elif invoice.get("billing_reason") == "subscription_cycle":
        canonical_type = "subscription.renewed"
    else:
        return Verdict("ignore", "first_invoice_covered_by_subscription_created")
    customer = invoice.get("customer")
    return shape.event(
        canonical_type,
        key=f"stripe:{invoice['id']}:{canonical_type}",
        **base,
        contact=shape.contact(
            invoice.get("customer_email"),
            name=invoice.get("customer_name"),
            external_ids={"stripe_customer": object_id(customer) if customer else ""},
        ),
        subscription={"id": object_id(subscription), "status": invoice.get("status") or "open"},
    )


SOURCE = StripeSource()
