"""Kajabi as a destination: grant and revoke an offer."""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from pipeline.config.model import Config
from pipeline.providers.base import DestinationContext
from pipeline.providers.kajabi.api import DEFAULT_API_BASE, KajabiApi
from pipeline.providers.shared.contacts import full_name
from pipeline.providers.shared.courses import CoursePlatform, held_and_missing
from pipeline.providers.shared.options import StrictOptions
from pipeline.providers.shared.products import offer_ids

# the contact offers are granted to, and the offers its customer already holds
Enrollee = tuple[dict[str, Any], set[str]]


class KajabiDestinationOptions(StrictOptions):
    client_id = fields.Str(required=True)
    client_secret = fields.Str(required=True)
    site_id = fields.Str(required=True)
    send_welcome_email = fields.Bool(load_default=True)


class KajabiDestination(CoursePlatform[KajabiApi, str, Enrollee]):
    name = "kajabi"
    nothing_granted = "no_offer_for_these_products"
    no_account = "no_such_customer"
    default_api_base = DEFAULT_API_BASE
    options_schema = KajabiDestinationOptions

    def grants(self, config: Config, event: dict[str, Any]) -> list[str]:
        return offer_ids(config, event)

    def connect(self, ctx: DestinationContext) -> KajabiApi:
        destination = ctx.destination
        return KajabiApi(
            destination.api_base,
            destination.options,
            ctx.http,
            ctx.redis,
            destination.timeout_seconds,
        )

    def enrollee(self, api: KajabiApi, email: str, event: dict[str, Any]) -> Enrollee:
        # offers are held by the customer but granted to the contact: read the one, find the other
        held = api.held_offers(api.find("customers", email))
        contact = api.find("contacts", email) or api.create_contact(email, full_name(event) or None)
        return contact, held

    def enroll(
        self, api: KajabiApi, ctx: DestinationContext, enrollee: Enrollee, grants: list[str]
    ) -> dict[str, Any]:
        contact, held = enrollee
        already, missing = held_and_missing(grants, held)
        if missing:
            body = {
                "data": [{"type": "offers", "id": o} for o in missing],
                "meta": {
                    "send_customer_welcome_email": ctx.destination.options["send_welcome_email"]
                },
            }
            api.request("POST", f"/v1/contacts/{contact['id']}/relationships/offers", json=body)
        return {"contact_id": contact["id"], "granted": missing, "already": already}

    def account(self, api: KajabiApi, email: str) -> dict[str, Any] | None:
        return api.find("customers", email)

    def unenroll(
        self, api: KajabiApi, ctx: DestinationContext, account: dict[str, Any], grants: list[str]
    ) -> dict[str, Any]:
        held, _ = held_and_missing(grants, api.held_offers(account))
        if held:
            body = {"data": [{"type": "offers", "id": o} for o in held]}
            api.request("DELETE", f"/v1/customers/{account['id']}/relationships/offers", json=body)
        return {"customer_id": account["id"], "revoked": held}


DESTINATION = KajabiDestination()
