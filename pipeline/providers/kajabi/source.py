"""Kajabi: purchase hooks in, offers granted and revoked out (granting an offer is how Kajabi enrolls).

API (Kajabi public API v1.1.0, developers.kajabi.com; OpenAPI mirrored in api-evangelist/kajabi
`openapi/kajabi-{authentication,contacts,customers,purchases,webhooks}-api-openapi.yml`): base
`https://api.kajabi.com`, JSON:API (`application/vnd.api+json`), errors `{"errors": [...]}`.
Token: `POST /v1/oauth/token` (form, `grant_type=client_credentials`) -> `{access_token, expires_in}`,
cached in Redis until a minute before it expires and dropped on a 401. `enroll` finds the contact
(`GET /v1/contacts?filter[site_id]&filter[search]=<email>`, exact e-mail match) or creates it
(`POST /v1/contacts` with the site relationship), reads the offers the customer already holds
(`GET /v1/customers/{id}/relationships/offers`) and grants only the missing ones
(`POST /v1/contacts/{id}/relationships/offers`, `meta.send_customer_welcome_email` from the
destination's `send_welcome_email`, Kajabi's default true). `unenroll` revokes held offers with
`DELETE /v1/customers/{id}/relationships/offers`. Offers come from `[products] offer_id`.

Hooks: `{"id": <resource id>, "event": "purchase", "payload": [<purchases, offers, customers>]}`.
No signature is documented [U], so the source uses the URL secret (`?key=`). `purchase` becomes
`purchase.completed` keyed `kajabi:purchase:<id>`, items `kajabi:offer:<id>`; other events are
ignored. With `client_id`/`client_secret` set, the source re-reads `GET /v1/purchases/{id}` and
ignores a purchase deactivated since. Rate limits are not documented [U]: 429/5xx retry as usual.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from pipeline.errors import BadPayload, ContractError
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, Identified, SourceContext, SourceProvider, Verdict
from pipeline.providers.kajabi.api import DEFAULT_API_BASE, KajabiApi
from pipeline.providers.shared import shape
from pipeline.providers.shared.identity import required_text
from pipeline.providers.shared.instants import Refusals, parse_instant, version_ms
from pipeline.providers.shared.options import StrictOptions
from pipeline.signatures.url_secret import UrlSecret
from schemas.contracts.kajabi import CONTRACTS

# Kajabi's JSON:API stamps carry an offset; one without names no instant
TIMESTAMPS = Refusals.of_provider("Kajabi")


class KajabiSourceOptions(StrictOptions):
    client_id = fields.Str(load_default=None)  # both set: re-read each purchase before acting
    client_secret = fields.Str(load_default=None)


class KajabiSource(SourceProvider):
    name = "kajabi"
    signature = UrlSecret()
    default_api_base = DEFAULT_API_BASE
    default_on_unknown_fields = "warn"  # Kajabi adds attributes to its resources often
    options_schema = KajabiSourceOptions
    lane = "payments"
    contracts = CONTRACTS

    def identify(self, payload: Any, body: bytes, headers: Any) -> Identified:
        message = "A Kajabi hook needs a string 'event'."
        kind = required_text(payload, "event", "missing_event_type", message)
        if not isinstance(payload.get("id"), str | int) or isinstance(payload.get("id"), bool):
            raise BadPayload("missing_event_id", "A Kajabi hook needs the resource 'id'.")
        return Identified(external_id=f"{kind}:{payload['id']}", provider_type=kind)

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched | None:
        options = ctx.source.options
        if not (options.get("client_id") and options.get("client_secret")):
            return None
        purchase = _resource(payload["payload"], "purchases")
        api = KajabiApi(ctx.source.api_base, options, ctx.http, ctx.redis)
        found = api.request("GET", f"/v1/purchases/{purchase['id']}").json()["data"]
        stamp = found["attributes"].get("updated_at") or found["attributes"].get("created_at")
        version = version_ms(parse_instant(stamp, TIMESTAMPS, naive_zone=None)) if stamp else 0
        return Fetched(found, f"kajabi:purchase:{purchase['id']}", version)

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        resources = payload["payload"]
        purchase = fetched.object if fetched else _resource(resources, "purchases")
        attributes = purchase["attributes"]
        if attributes.get("deactivated_at"):
            return Verdict("ignore", "purchase_deactivated")
        customer = _resource(resources, "customers")
        contact_ref = ((customer.get("relationships") or {}).get("contact") or {}).get("data") or {}
        contact = shape.contact(
            customer["attributes"]["email"],
            name=customer["attributes"].get("name"),
            external_ids={
                "kajabi_customer": str(customer["id"]),
                "kajabi_contact": str(contact_ref.get("id") or ""),
            },
        )
        titles = {
            str(r["id"]): r["attributes"].get("title") for r in resources if r["type"] == "offers"
        }
        items = [
            {
                "product": f"kajabi:offer:{o}",
                "name": titles.get(o),
                "quantity": attributes.get("quantity") or 1,
            }
            for o in _offer_ids(purchase, resources)
        ]
        part = {
            "id": str(purchase["id"]),
            "amount": int(attributes.get("amount_in_cents") or 0),
            "currency": str(attributes["currency"]).lower(),
            "items": items,
        }
        stamp = attributes.get("created_at")
        return shape.event(
            "purchase.completed",
            key=f"kajabi:purchase:{purchase['id']}",
            source=event.source,
            provider=self.name,
            occurred_at=parse_instant(stamp, TIMESTAMPS, naive_zone=None)
            if stamp
            else event.received_at,
            contact=contact,
            purchase=part,
        )


def _resource(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    for resource in resources:
        if resource.get("type") == kind:
            return resource
    raise ContractError(f"the hook carries no {kind} resource", reason=f"no_{kind}")


def _offer_ids(purchase: dict[str, Any], resources: list[dict[str, Any]]) -> list[str]:
    # the sample names one `offer`; the schema a list of `offers`: read whichever is there
    relationships = purchase.get("relationships") or {}
    single = (relationships.get("offer") or {}).get("data")
    many = (relationships.get("offers") or {}).get("data") or []
    found = [r["id"] for r in ([single] if single else []) + many]
    return [str(i) for i in found] or [str(r["id"]) for r in resources if r["type"] == "offers"]


SOURCE = KajabiSource()
