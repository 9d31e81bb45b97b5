"""Thinkific as a source: signed webhooks in, the enrollment or order re-read, canonical events out.

Webhooks (support.thinkific.dev "Webhooks Documentation" 4422658311703 and "Using Webhooks"
4422685850775): a JSON envelope `{id, resource, action, tenant_id, created_at, payload}`, signed
with `X-Thinkific-Hmac-Sha256` = hex HMAC-SHA256 of the raw body keyed with the site's API key (or
the app's client secret). The topic is `resource.action`. Mapped topics:

- `enrollment.created`   -> `enrollment.created` (a full enrollment, not `enrollment.trial`)
- `enrollment.completed` -> `enrollment.completed`
- `order.created`        -> `purchase.completed` ("an order is successfully completed"); each
  product becomes an item `thinkific:product:<id>`, the key `[products]` is looked up with.

Every other topic (`enrollment.progress`, `user.*`, `order_transaction.*`, ...) is stored and
ignored. Payloads are pointers that often lack the user's details, so fetch re-reads
`GET /enrollments/{id}` + `GET /users/{id}` or `GET /orders/{id}`: the current state decides.
Orders carry no currency in the API, so the source's `currency` option (default "usd") names the
site's. Unverified [U]: the `X-Thinkific-Topic`/`-Subdomain` headers (stored, never relied on).
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from pipeline.errors import BadPayload, ContractError
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, Identified, SourceContext, SourceProvider, Verdict
from pipeline.providers.shared import shape
from pipeline.providers.shared.identity import required_text
from pipeline.providers.shared.instants import Refusals, parse_instant, version_ms
from pipeline.providers.thinkific.api import DEFAULT_API_BASE, ThinkificApi, ThinkificOptions
from pipeline.signatures.body_hmac import BodyHmac
from schemas.contracts.thinkific import CONTRACTS

ENROLLMENT_TYPES = ("enrollment.created", "enrollment.completed")
REFUNDED_STATES = ("refunded", "refund")
# `created_at` carries an offset (the contract reads it as an aware datetime); one without is refused
TIMESTAMPS = Refusals.of_provider("Thinkific")


class ThinkificSourceOptions(ThinkificOptions):
    currency = fields.Str(load_default="usd", validate=validate.Regexp(r"^[A-Za-z]{3}$"))


class ThinkificSource(SourceProvider):
    name = "thinkific"
    # hex HMAC-SHA256 of the raw body keyed with the site's API key or the app's client secret
    # (support.thinkific.dev "Using Webhooks", 4422685850775); no timestamp is signed, so replays
    # are caught by the event-id dedupe alone
    signature = BodyHmac(header="X-Thinkific-Hmac-Sha256", encoding="hex")
    stored_headers = (
        "X-Thinkific-Hmac-Sha256",
        "X-Thinkific-Topic",
        "X-Thinkific-Subdomain",
        *SourceProvider.stored_headers,
    )
    default_api_base = DEFAULT_API_BASE
    # the published samples are years old and Thinkific adds fields: drift is recorded, not fatal
    default_on_unknown_fields = "warn"
    options_schema = ThinkificSourceOptions
    lanes = {
        "enrollment.created": "enrollments",
        "enrollment.completed": "enrollments",
        "order.created": "payments",
    }
    contracts = CONTRACTS

    def identify(self, payload: Any, body: bytes, headers: Any) -> Identified:
        message = "A Thinkific webhook needs a string 'id'."
        event_id = required_text(payload, "id", "missing_event_id", message)
        resource, action = payload.get("resource"), payload.get("action")
        if not isinstance(resource, str) or not isinstance(action, str):
            raise BadPayload(
                "missing_event_type", "A Thinkific webhook needs 'resource' and 'action'."
            )
        return Identified(external_id=event_id, provider_type=f"{resource}.{action}")

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched:
        source = ctx.source
        api = ThinkificApi(source.api_base, source.options, ctx.http)
        object_id = int(payload["payload"]["id"])
        version = version_ms(parse_instant(payload["created_at"], TIMESTAMPS, naive_zone=None))
        # created and completed are two facts about one enrollment, not successive states of it
        key = f"thinkific:{payload['resource']}:{object_id}:{payload['action']}"
        if event.provider_type in ENROLLMENT_TYPES:
            enrollment = api.get(f"/enrollments/{object_id}")
            user = api.get(f"/users/{enrollment['user_id']}") if enrollment else None
            return Fetched({"enrollment": enrollment, "user": user}, key, version)
        return Fetched({"order": api.get(f"/orders/{object_id}")}, key, version)

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        assert fetched is not None
        base = {
            "source": event.source,
            "provider": self.name,
            "occurred_at": parse_instant(payload["created_at"], TIMESTAMPS, naive_zone=None),
        }
        if event.provider_type in ENROLLMENT_TYPES:
            return _enrollment(event.provider_type, fetched.object, base)
        return _order(fetched.object.get("order"), ctx.source.options["currency"], base)


def _enrollment(kind: str, found: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | Verdict:
    enrollment, user = found.get("enrollment"), found.get("user") or {}
    if enrollment is None:
        return Verdict("ignore", "enrollment_deleted")
    if kind == "enrollment.completed" and not enrollment.get("completed"):
        return Verdict("ignore", "enrollment_not_completed")
    contact = shape.contact(
        user.get("email") or enrollment.get("user_email"),
        name=enrollment.get("user_name"),
        first_name=user.get("first_name"),
        last_name=user.get("last_name"),
        external_ids={"thinkific_user": str(enrollment["user_id"])},
    )
    part = {
        "id": str(enrollment["id"]),
        "course_id": str(enrollment["course_id"]),
        "course_name": enrollment.get("course_name"),
        "user_id": str(enrollment["user_id"]),
        "completed": bool(enrollment.get("completed")),
    }
    return shape.event(
        kind,
        key=f"thinkific:enrollment:{enrollment['id']}",
        **base,
        contact=contact,
        enrollment=part,
    )


def _order(
    order: dict[str, Any] | None, currency: str, base: dict[str, Any]
) -> dict[str, Any] | Verdict:
    if order is None:
        return Verdict("ignore", "order_deleted")
    if str(order.get("status") or "").lower() in REFUNDED_STATES:
        return Verdict("ignore", "refunded_before_processing")
    if order.get("amount_cents") is None:
        raise ContractError("the Thinkific order has no amount", reason="no_amount")
    lines = order.get("items") or [order]
    items = [
        {
            "product": f"thinkific:product:{line['product_id']}",
            "name": line.get("product_name"),
            "quantity": int(line.get("quantity") or 1),
            "amount": line.get("amount_cents"),
        }
        for line in lines
        if line.get("product_id") is not None
    ]
    purchase = {
        "id": str(order["id"]),
        "amount": int(order["amount_cents"]),
        "currency": currency.lower(),
        "items": items,
    }
    contact = shape.contact(
        order.get("user_email"),
        name=order.get("user_name"),
        external_ids={"thinkific_user": str(order.get("user_id") or "")},
    )
    return shape.event(
        "purchase.completed",
        key=f"thinkific:order:{order['id']}",
        **base,
        contact=contact,
        purchase=purchase,
    )


SOURCE = ThinkificSource()
