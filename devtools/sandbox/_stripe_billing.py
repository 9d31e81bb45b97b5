"""The sandbox Stripe's subscriptions, in Stripe's default flow (`payment_behavior=default_incomplete`).

As docs.stripe.com/api/subscriptions/create and /billing/subscriptions/webhooks describe it: the
subscription is created `incomplete` with an open first invoice (`billing_reason:
subscription_create`) and `customer.subscription.created` is sent; when the customer pays, the
invoice is `paid` (`invoice.paid`) and the subscription turns `active`
(`customer.subscription.updated` with `previous_attributes.status = "incomplete"`). Stripe does not
deliver these in order (docs.stripe.com/webhooks#event-ordering), which is what tests replay.
"""

from __future__ import annotations

from typing import Any

from devtools.sandbox._stripe_objects import emit, objects, save, state, template

MONTH = 30 * 86400


def subscribe(spec: dict[str, Any], now: int) -> dict[str, Any]:
    """A customer subscribes to `price`: the subscription incomplete, its first invoice open."""
    email, price_id = spec["email"], spec.get("price", "price_1PgafmB7WZ01zgkW6dKueIc5")
    amount, currency = int(spec.get("amount", 2000)), spec.get("currency", "usd")
    customer = save(
        template(
            "customer", id=state().new_id("cus"), email=email, name=spec.get("name"), created=now
        )
    )
    price = template("price", id=price_id, unit_amount=amount, currency=currency, created=now)
    sub_id, invoice_id = str(state().new_id("sub")), str(state().new_id("in"))
    item = template("subscription", id="")["items"]["data"][0]
    item.update(
        id=state().new_id("si"),
        created=now,
        current_period_start=now,
        current_period_end=now + MONTH,
        price=price,
        plan={**item["plan"], "id": price_id, "amount": amount, "currency": currency},
        subscription=sub_id,
        quantity=1,
    )
    subscription = save(
        template(
            "subscription",
            id=sub_id,
            customer=customer["id"],
            status="incomplete",
            created=now,
            start_date=now,
            billing_cycle_anchor=now,
            cancel_at=None,
            cancel_at_period_end=False,
            canceled_at=None,
            ended_at=None,
            trial_end=None,
            trial_start=None,
            currency=currency,
            latest_invoice=invoice_id,
            items={
                "object": "list",
                "data": [item],
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
        )
    )
    save(_first_invoice(invoice_id, subscription, customer, amount, now))
    event = emit("customer.subscription.created", subscription, created=now)
    return {"subscription": sub_id, "invoice": invoice_id, "event": event}


def _first_invoice(
    invoice_id: str, sub: dict[str, Any], customer: dict[str, Any], amount: int, now: int
) -> dict[str, Any]:
    line = template(
        "line_item",
        id=state().new_id("il"),
        amount=amount,
        currency=sub["currency"],
        description=f"1 x {sub['items']['data'][0]['price']['id']}",
        invoice=invoice_id,
        period={"start": now, "end": now + MONTH},
        subscription=sub["id"],
    )
    return template(
        "invoice",
        id=invoice_id,
        customer=customer["id"],
        customer_email=customer["email"],
        customer_name=customer["name"],
        subscription=sub["id"],
        parent={
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": sub["id"]},
        },
        billing_reason="subscription_create",
        status="open",
        amount_due=amount,
        amount_paid=0,
        amount_remaining=amount,
        amount_overpaid=0,
        currency=sub["currency"],
        created=now,
        period_start=now,
        period_end=now,
        attempted=True,
        attempt_count=1,
        auto_advance=True,
        status_transitions={
            "finalized_at": now,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        lines={
            "object": "list",
            "data": [line],
            "has_more": False,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
    )


def pay_first_invoice(sub_id: str, now: int) -> dict[str, Any]:
    """The customer confirms the first payment: the invoice is paid, the subscription active."""
    subscription = objects()[sub_id]
    invoice = objects()[subscription["latest_invoice"]]
    invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
    invoice["status_transitions"] = {**invoice["status_transitions"], "paid_at": now}
    subscription["status"] = "active"
    return {
        "invoice.paid": emit("invoice.paid", invoice, created=now),
        "customer.subscription.updated": emit(
            "customer.subscription.updated",
            subscription,
            previous={"status": "incomplete"},
            created=now,
        ),
    }
