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

import hashlib
from datetime import datetime
from typing import Any

import redis
import requests
from marshmallow import RAISE, Schema, fields

from pipeline import canonical
from pipeline.errors import ConfigurationError, ContractError, PermanentError
from pipeline.http import ApiClient
from pipeline.providers.base import (
    BadPayload,
    DeliveryRef,
    DestinationContext,
    DestinationProvider,
    Fetched,
    Identified,
    SourceContext,
    SourceProvider,
    StoredEvent,
    Verdict,
)
from pipeline.providers.common import offer_ids, require_email
from schemas.contracts.kajabi import CONTRACTS

DEFAULT_API_BASE = "https://api.kajabi.com"
JSON_API = "application/vnd.api+json"
TOKEN_MARGIN = 60  # seconds: never send a token that may expire on the way


class KajabiApi:
    def __init__(
        self,
        api_base: str | None,
        options: Any,
        http: requests.Session,
        cache: redis.Redis,
        timeout: float = 10.0,
    ) -> None:
        self.options, self.cache = options, cache
        self.client = ApiClient(
            provider="kajabi",
            base_url=api_base or DEFAULT_API_BASE,
            session=http,
            timeout=timeout,
            headers={"Accept": JSON_API, "Content-Type": JSON_API},
        )
        seed = f"{self.client.base_url}|{options['client_id']}".encode()
        self.token_key = "stackwire:kajabi:token:" + hashlib.sha256(seed).hexdigest()[:24]

    def token(self) -> str:
        cached = self.cache.get(self.token_key)
        if cached:
            return cached.decode() if isinstance(cached, bytes) else str(cached)
        form = {
            "grant_type": "client_credentials",
            "client_id": self.options["client_id"],
            "client_secret": self.options["client_secret"],
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        response = self.client.request(
            "POST", "/v1/oauth/token", data=form, headers=headers, accept=(400,)
        )
        if response.status_code == 400:
            raise ConfigurationError(
                "kajabi refused the client credentials in the config",
                reason="http_400",
                http_status=400,
            )
        found = response.json()
        ttl = max(int(found.get("expires_in") or 0) - TOKEN_MARGIN, 1)
        self.cache.set(self.token_key, found["access_token"], ex=ttl)
        return str(found["access_token"])

    def request(
        self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> requests.Response:
        """A call with the cached token; a 401 drops it and tries once with a fresh one."""
        for fresh in (False, True):
            headers = {"Authorization": f"Bearer {self.token()}"}
            response = self.client.request(
                method, path, headers=headers, accept=(*accept, 401), **kwargs
            )
            if response.status_code != 401:
                return response
            self.cache.delete(self.token_key)
            if fresh:
                break
        raise ConfigurationError(
            "kajabi refused the access token for these credentials",
            reason="http_401",
            http_status=401,
        )

    def find(self, collection: str, email: str) -> dict[str, Any] | None:
        """A contact or customer by exact e-mail (Kajabi's search is fuzzy over names and e-mails)."""
        params = {"filter[site_id]": self.options.get("site_id"), "filter[search]": email}
        found = self.request("GET", f"/v1/{collection}", params=params).json().get("data") or []
        wanted = email.strip().lower()
        match = (r for r in found if str(r["attributes"].get("email", "")).lower() == wanted)
        return next(match, None)

    def create_contact(self, email: str, name: str | None) -> dict[str, Any]:
        site = {"data": {"type": "sites", "id": str(self.options["site_id"])}}
        attributes = {"name": name or email.split("@", 1)[0], "email": email}
        body = {
            "data": {"type": "contacts", "attributes": attributes, "relationships": {"site": site}}
        }
        response = self.request("POST", "/v1/contacts", json=body, accept=(422,))
        if response.status_code == 422:
            # created meanwhile by another delivery for the same person: read it back
            contact = self.find("contacts", email)
            if contact is None:
                raise PermanentError(
                    "Kajabi refused the new contact", reason="contact_rejected", http_status=422
                )
            return contact
        created: dict[str, Any] = response.json()["data"]
        return created

    def held_offers(self, customer: dict[str, Any] | None) -> set[str]:
        if customer is None:
            return set()
        path = f"/v1/customers/{customer['id']}/relationships/offers"
        return {str(r["id"]) for r in self.request("GET", path).json().get("data") or []}


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


class KajabiSourceOptions(Schema):
    class Meta:
        unknown = RAISE

    client_id = fields.Str(load_default=None)  # both set: re-read each purchase before acting
    client_secret = fields.Str(load_default=None)


class KajabiSource(SourceProvider):
    name = "kajabi"
    scheme = "url_secret"
    stored_headers = ("Content-Type", "User-Agent")
    default_api_base = DEFAULT_API_BASE
    default_on_unknown_fields = "warn"  # Kajabi adds attributes to its resources often
    options_schema = KajabiSourceOptions
    lanes = {"purchase": "payments"}
    contracts = CONTRACTS

    def identify(self, payload: Any, body: bytes, headers: Any) -> Identified:
        if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
            raise BadPayload("missing_event_type", "A Kajabi hook needs a string 'event'.")
        if not isinstance(payload.get("id"), str | int) or isinstance(payload.get("id"), bool):
            raise BadPayload("missing_event_id", "A Kajabi hook needs the resource 'id'.")
        return Identified(
            external_id=f"{payload['event']}:{payload['id']}", provider_type=payload["event"]
        )

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched | None:
        options = ctx.source.options
        if not (options.get("client_id") and options.get("client_secret")):
            return None
        purchase = _resource(payload["payload"], "purchases")
        api = KajabiApi(ctx.source.api_base, options, ctx.http, ctx.redis)
        found = api.request("GET", f"/v1/purchases/{purchase['id']}").json()["data"]
        stamp = found["attributes"].get("updated_at") or found["attributes"].get("created_at")
        version = int(_instant(stamp).timestamp() * 1000) if stamp else 0
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
        contact = canonical.contact(
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
        return canonical.event(
            "purchase.completed",
            key=f"kajabi:purchase:{purchase['id']}",
            source=event.source,
            provider=self.name,
            occurred_at=_instant(stamp) if stamp else event.received_at,
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


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ContractError("a Kajabi timestamp is malformed", reason="bad_timestamp") from None
    if moment.tzinfo is None:
        raise ContractError("a Kajabi timestamp has no zone", reason="bad_timestamp")
    return moment


SOURCE = KajabiSource()
DESTINATION = KajabiDestination()
