"""Stripe as a source: signed webhooks in, the full object fetched (api.py), canonical events out
(mapping.py).

The webhook is a pointer: we always re-read the object, so an out-of-order or stale event acts on
current state. Stripe does not deliver events in order (docs.stripe.com/webhooks#event-ordering),
so the ordering guard versions an object by when we read it, not by the webhook's `created`: what
we read is the current state, so an event delivered late is never stale; only a read that settles
after a newer read of the same object is.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from pipeline.delivery.http import ApiClient
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, Identified, SourceContext, SourceProvider, Verdict
from pipeline.providers.shared.identity import required_text
from pipeline.providers.shared.options import StrictOptions
from pipeline.providers.stripe import api
from pipeline.providers.stripe.mapping import (
    CHECKOUT_TYPES,
    SUBSCRIPTION_TYPES,
    canonical_event,
    invoice_subscription,
    object_id,
    starts_subscription,
)
from pipeline.signatures.timestamped_hmac import TimestampedHmac
from schemas.contracts.stripe import CONTRACTS, VERSIONS

DEFAULT_API_BASE = api.DEFAULT_API_BASE


class StripeOptions(StrictOptions):
    api_key = fields.Str(required=True)
    api_version = fields.Str(load_default=None)


class StripeSource(SourceProvider):
    name = "stripe"
    # `Stripe-Signature: t=…,v1=…` (docs.stripe.com/webhooks/signatures; stripe-python `_webhook.py`)
    signature = TimestampedHmac(header="Stripe-Signature")
    stored_headers = ("Stripe-Signature", *SourceProvider.stored_headers)
    needs_api_base = False
    default_api_base = DEFAULT_API_BASE
    default_on_unknown_fields = "warn"
    options_schema = StripeOptions
    lane = "payments"
    contracts = CONTRACTS
    contract_versions = VERSIONS

    def identify(self, payload: Any, body: bytes, headers: Any) -> Identified:
        event_id = required_text(
            payload, "id", "missing_event_id", "A Stripe event needs a string 'id'."
        )
        kind = required_text(
            payload, "type", "missing_event_type", "A Stripe event needs a string 'type'."
        )
        return Identified(external_id=event_id, provider_type=kind)

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
        # when the state was read (see the module's docstring); never before the event itself
        version = max(int(payload["created"]) * 1000, int(ctx.now * 1000))
        client, kind = api.client(ctx), event.provider_type
        if kind in CHECKOUT_TYPES:
            session_id = object_id(obj)
            found = api.checkout_session(client, session_id)
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
            sub = api.subscription(client, sub_id)
            return Fetched(sub, f"stripe:subscription:{sub_id}", version)
        invoice_id = object_id(obj)
        invoice = client.request("GET", f"/v1/invoices/{invoice_id}").json()
        if starts_subscription(kind, invoice):
            # the first invoice paid: whether it started the subscription is the subscription's
            # own state, read now
            sub_id = object_id(invoice_subscription(invoice))
            invoice["current_subscription"] = api.subscription(client, sub_id)
        return Fetched(invoice, f"stripe:invoice:{invoice_id}", version)

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        assert fetched is not None
        base = {"source": event.source, "provider": self.name, "occurred_at": payload["created"]}
        previous = payload["data"].get("previous_attributes") or {}
        return canonical_event(event.provider_type, fetched.object, base, previous)


def _session_for(client: ApiClient, payment_intent: Any) -> dict[str, Any] | None:
    return api.session_for_payment(client, object_id(payment_intent)) if payment_intent else None


SOURCE = StripeSource()
