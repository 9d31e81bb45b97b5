"""Stripe's fetched checkout sessions, charges, disputes, subscriptions and invoices as canonical
events (see `source.py`). Product keys are the line items' price ids; amounts stay in Stripe's
minor units, currencies lower-cased. A session's line items must be complete (api.py pages them):
a missing or partial list is a contract error, never "nothing bought".

Subscriptions in Stripe's default flow (`payment_behavior=default_incomplete`,
docs.stripe.com/api/subscriptions/create) start `incomplete`; paying the first invoice makes them
`active`, with `invoice.paid` (`billing_reason: subscription_create`) and
`customer.subscription.updated` (`previous_attributes.status`), in any order
(docs.stripe.com/billing/subscriptions/webhooks). `subscription.started` comes from whichever of
`created`, a status-changing `updated` or that first `invoice.paid` sees the subscription active
or trialing; its key is one per subscription (`stripe:<sub id>:subscription.started`), so the
others plan nothing again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pipeline.errors import ContractError
from pipeline.providers.base import Verdict
from pipeline.providers.shared import shape

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
# docs.stripe.com/billing/subscriptions/overview: "safe to provision your product"
STARTED_STATES = ("active", "trialing")
CREATED = "customer.subscription.created"


def object_id(value: Any) -> str:
    """An id from a field that holds either the id or the expanded object; validated."""
    found = value.get("id") if isinstance(value, dict) else value
    if not isinstance(found, str) or not _ID.match(found):
        raise ContractError("a Stripe object id is missing or malformed", reason="bad_object_id")
    return found


def canonical_event(
    kind: str,
    obj: dict[str, Any],
    base: dict[str, Any],
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any] | Verdict:
    """The fetched object of a `kind` event as its canonical event, or why there is none;
    `previous` is the webhook's `data.previous_attributes`."""
    if kind in CHECKOUT_TYPES:
        return _checkout(kind, obj, base)
    if kind == "charge.refunded":
        return _refund(obj, base)
    if kind == "charge.dispute.created":
        return _dispute(obj, base)
    if kind in SUBSCRIPTION_TYPES:
        return _subscription(kind, obj, base, previous or {})
    return _invoice(kind, obj, base)


def invoice_subscription(invoice: dict[str, Any]) -> Any:
    """The invoice's subscription: `subscription` before API 2025-03-31, then under `parent`."""
    return invoice.get("subscription") or (
        ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    )


def starts_subscription(kind: str, invoice: dict[str, Any]) -> bool:
    """The first invoice of a subscription, paid: the subscription may start with it."""
    return (
        kind == "invoice.paid"
        and invoice.get("billing_reason") == "subscription_create"
        and bool(invoice_subscription(invoice))
    )


def _items(session: dict[str, Any]) -> list[dict[str, Any]]:
    line_items = session.get("line_items")
    if not isinstance(line_items, dict) or line_items.get("has_more"):
        # what was bought is unknown: acting on part of it would grant (or revoke) too little
        raise ContractError(
            "the checkout session's line items are missing or incomplete",
            reason="incomplete_line_items",
        )
    items = []
    for line in line_items.get("data") or []:
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
        raise ContractError(
            "the subscription's customer was not expanded", reason="missing_expansion"
        )
    return shape.contact(
        customer.get("email"),
        name=customer.get("name"),
        external_ids={"stripe_customer": object_id(customer)},
    )


def _subscription(
    kind: str, sub: dict[str, Any], base: dict[str, Any], previous: Mapping[str, Any]
) -> dict[str, Any] | Verdict:
    status = sub["status"]
    if kind != CREATED and status in CANCELED_STATES:
        return _subscription_event("subscription.canceled", sub, base)
    if status in STARTED_STATES and (kind == CREATED or "status" in previous):
        # created live, or changed status into live (the first payment, a trial's end): started,
        # once per subscription whichever event says so first
        return _subscription_event("subscription.started", sub, base)
    if kind == CREATED:
        # incomplete until the first invoice is paid; that invoice or the update says when
        return Verdict("wait", "subscription_not_active")
    if status in STARTED_STATES:
        return Verdict("ignore", "subscription_still_active")
    return Verdict("ignore", "subscription_not_active")


def _subscription_event(
    canonical_type: str, sub: dict[str, Any], base: dict[str, Any]
) -> dict[str, Any]:
    items = [
        {"product": (item.get("price") or {}).get("id", ""), "quantity": item.get("quantity") or 1}
        for item in ((sub.get("items") or {}).get("data") or [])
    ]
    return shape.event(
        canonical_type,
        key=f"stripe:{sub['id']}:{canonical_type}",
        **base,
        contact=_subscription_contact(sub.get("customer")),
        subscription={"id": sub["id"], "status": sub["status"], "items": items},
    )


def _invoice(kind: str, invoice: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | Verdict:
    subscription = invoice_subscription(invoice)
    if not subscription:
        return Verdict("ignore", "not_a_subscription_invoice")
    if starts_subscription(kind, invoice):
        return _first_payment(invoice, base)
    if kind == "invoice.payment_failed":
        canonical_type = "subscription.payment_failed"
    elif invoice.get("billing_reason") == "subscription_cycle":
        canonical_type = "subscription.renewed"
    else:
        # a proration or a manual invoice: neither a start nor a renewal
        return Verdict("ignore", "invoice_neither_first_nor_renewal")
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


def _first_payment(invoice: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | Verdict:
    """The first invoice paid starts the subscription if it is live now (read by the source)."""
    sub = invoice.get("current_subscription")
    if not isinstance(sub, dict):
        raise ContractError(
            "the first invoice was fetched without its subscription", reason="missing_expansion"
        )
    if sub["status"] not in STARTED_STATES:
        return Verdict("ignore", "subscription_not_active")
    return _subscription_event("subscription.started", sub, base)
