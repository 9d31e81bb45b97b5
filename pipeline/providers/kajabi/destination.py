"""Kajabi as a destination: grant and revoke an offer."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields

from pipeline.providers.base import (
    DeliveryRef,
    DestinationContext,
    DestinationProvider,
)
from pipeline.providers.kajabi.api import DEFAULT_API_BASE, KajabiApi
from pipeline.providers.shared.contacts import require_email
from pipeline.providers.shared.products import offer_ids


class KajabiDestinationOptions(Schema):
    class Meta:
        unknown = RAISE

    client_id = fields.Str(required=True)
    client_secret = fields.Str(required=True)
    site_id = fields.Str(required=True)
    send_welcome_email = fields.Bool(load_default=True)


class KajabiDestination(DestinationProvider):
    name = "kajabi"
    kind = "courses"
    actions = {"enroll": "enrollments", "unenroll": "enrollments"}
    default_api_base = DEFAULT_API_BASE
    options_schema = KajabiDestinationOptions

    def perform(
        self, ctx: DestinationContext, delivery: DeliveryRef, event: dict[str, Any]
    ) -> dict[str, Any]:
        offers = offer_ids(ctx.config, event)
        if not offers:
            return {"skipped": "no_offer_for_these_products"}
        destination = ctx.destination
        api = KajabiApi(
            destination.api_base,
            destination.options,
            ctx.http,
            ctx.redis,
            destination.timeout_seconds,
        )
        email = require_email(event)
        customer = api.find("customers", email)
        held = api.held_offers(customer)
        if delivery.verb == "unenroll":
            return _revoke(api, customer, [o for o in offers if o in held])
        contact = api.find("contacts", email) or api.create_contact(email, _name(event))
        granted = _grant(api, contact, [o for o in offers if o not in held], destination.options)
        return {
            "contact_id": contact["id"],
            "granted": granted,
            "already": [o for o in offers if o in held],
        }


def _grant(api: KajabiApi, contact: dict[str, Any], offers: list[str], options: Any) -> list[str]:
    if offers:
        body = {
            "data": [{"type": "offers", "id": o} for o in offers],
            "meta": {"send_customer_welcome_email": options["send_welcome_email"]},
        }
        api.request("POST", f"/v1/contacts/{contact['id']}/relationships/offers", json=body)
    return offers


def _revoke(api: KajabiApi, customer: dict[str, Any] | None, offers: list[str]) -> dict[str, Any]:
    if customer is None:
        return {"skipped": "no_such_customer"}
    if offers:
        body = {"data": [{"type": "offers", "id": o} for o in offers]}
        api.request("DELETE", f"/v1/customers/{customer['id']}/relationships/offers", json=body)
    return {"customer_id": customer["id"], "revoked": offers}


def _name(event: dict[str, Any]) -> str | None:
    contact = event.get("contact") or {}
    return " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p) or None


DESTINATION = KajabiDestination()
