"""Stripe's fetched subscriptions and invoices as canonical events: when a subscription starts."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import ContractError
from pipeline.providers.base import Verdict
from pipeline.providers.stripe.mapping import canonical_event

BASE = {"source": "stripe", "provider": "stripe", "occurred_at": 1_760_000_000}
CREATED, UPDATED = "customer.subscription.created", "customer.subscription.updated"


def subscription(status: str) -> dict[str, Any]:
    return {
        "id": "sub_1QStart",
        "object": "subscription",
        "status": status,
        "customer": {"id": "cus_QStart", "object": "customer", "email": "ann@example.com"},
        "items": {"data": [{"price": {"id": "price_monthly"}, "quantity": 1}]},
    }


def first_invoice(sub: dict[str, Any] | None, **overrides: Any) -> dict[str, Any]:
    invoice = {
        "id": "in_1QFirst",
        "object": "invoice",
        "billing_reason": "subscription_create",
        "customer": "cus_QStart",
        # API 2025-03-31 and later: the subscription is under `parent`
        "parent": {"subscription_details": {"subscription": "sub_1QStart"}},
        "status": "paid",
    }
    if sub is not None:
        invoice["current_subscription"] = sub
    return {**invoice, **overrides}


def kind_of(result: dict[str, Any] | Verdict) -> str:
    if isinstance(result, Verdict):
        return f"{result.outcome}:{result.reason}"
    return f"{result['type']} {result['key']}"


STARTED = "subscription.started stripe:sub_1QStart:subscription.started"


@pytest.mark.parametrize(
    ("kind", "status", "previous", "expected"),
    [
        (CREATED, "incomplete", {}, "wait:subscription_not_active"),
        (CREATED, "active", {}, STARTED),
        (CREATED, "trialing", {}, STARTED),
        (UPDATED, "active", {"status": "incomplete"}, STARTED),
        (UPDATED, "active", {"metadata": {}}, "ignore:subscription_still_active"),
        (UPDATED, "incomplete", {"metadata": {}}, "ignore:subscription_not_active"),
        (
            UPDATED,
            "canceled",
            {"status": "active"},
            "subscription.canceled stripe:sub_1QStart:subscription.canceled",
        ),
    ],
)
def test_whichever_event_first_sees_the_subscription_live_starts_it_under_one_key(
    kind: str, status: str, previous: dict[str, Any], expected: str
) -> None:
    assert kind_of(canonical_event(kind, subscription(status), BASE, previous)) == expected


def test_the_first_invoice_paid_starts_the_subscription_it_finds_live() -> None:
    started = canonical_event("invoice.paid", first_invoice(subscription("active")), BASE)
    assert kind_of(started) == STARTED
    assert not isinstance(started, Verdict)
    assert started["subscription"]["items"] == [{"product": "price_monthly", "quantity": 1}]
    gone = canonical_event("invoice.paid", first_invoice(subscription("canceled")), BASE)
    assert kind_of(gone) == "ignore:subscription_not_active"


def test_a_first_invoice_read_without_its_subscription_breaks_the_contract() -> None:
    with pytest.raises(ContractError) as raised:
        canonical_event("invoice.paid", first_invoice(None), BASE)
    assert raised.value.reason == "missing_expansion"


def test_invoices_that_neither_start_nor_renew_are_ignored() -> None:
    proration = first_invoice(None, billing_reason="subscription_update")
    assert kind_of(canonical_event("invoice.paid", proration, BASE)) == (
        "ignore:invoice_neither_first_nor_renewal"
    )
    renewal = first_invoice(None, billing_reason="subscription_cycle", customer_email="a@b.co")
    assert kind_of(canonical_event("invoice.paid", renewal, BASE)) == (
        "subscription.renewed stripe:in_1QFirst:subscription.renewed"
    )
