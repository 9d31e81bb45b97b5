"""Teachable: webhooks in (enrollments, transactions), enroll and unenroll out.

API (docs.teachable.com/docs/authentication, /docs/rate-limits-1; endpoint shapes from
api-evangelist/teachable `openapi/teachable-{users,enrollments}-api-openapi.yml`): base
`https://developers.teachable.com`, paths `/v1/...`, header `apiKey`. Enroll is create-only with no
idempotency key, so the destination looks first: find the user (`GET /v1/users?email=`), create it
if missing (`POST /v1/users`), read its courses (`GET /v1/users/{id}`, `courses[].is_active_enrollment`)
and `POST /v1/enroll {user_id, course_id}` only for courses not already active; unenroll is
`POST /v1/unenroll` for active ones. Over 360 requests/minute Teachable answers 429 with
`RateLimit-Reset` (seconds to wait, not `Retry-After`): we retry after exactly that.

Webhooks (docs.teachable.com/docs/available-events): a JSON envelope `{type, id, livemode, created,
hook_event_id, object}`, delivered as a one-element array (cbraegelmann/HERDTeachableHubspot
observed deliveries) or a bare object; both are read. `hook_event_id` names the event (the
envelope `id` is the object's). Mapped: `Enrollment.created|completed` -> `enrollment.*`,
`Transaction.created` -> `purchase.completed` (keyed by sale, so a renewal charge of the same sale
plans nothing new; items `teachable:pricing_plan:<id>`), `Transaction.refunded` ->
`purchase.refunded`. `Sale.created` (free and manual enrollments too) and the rest are ignored.
Unverified [U]: `/v1/enroll`, `/v1/unenroll` and the user shapes (public integrations only); the
signature scheme (see receivers/schemes/teachable.py); a batch of several mapped events in one
delivery is refused with 400, since the receiver stores one event per request.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from pipeline.errors import (
    BadPayload,
    ContractError,
)
from pipeline.log.events import StoredEvent
from pipeline.providers.base import (
    Fetched,
    Identified,
    SourceContext,
    SourceProvider,
    Verdict,
    parse_json,
)
from pipeline.providers.shared import shape
from pipeline.providers.shared.identity import required_text
from pipeline.providers.shared.instants import Refusals, parse_instant, version_ms
from pipeline.providers.shared.options import StrictOptions
from pipeline.providers.teachable.api import DEFAULT_API_BASE, call, client
from pipeline.providers.teachable.signature import TeachableSignature
from schemas.contracts.teachable import CONTRACTS

ENROLLMENT_TYPES = ("Enrollment.created", "Enrollment.completed")
# `created` carries an offset (the contract reads it as an aware datetime); one without is refused
TIMESTAMPS = Refusals.of_provider("Teachable")


class TeachableSourceOptions(StrictOptions):
    api_key = fields.Str(load_default=None)  # only to look up a user the payload omits
    signature_header = fields.Str(load_default=None)
    signature_encoding = fields.Str(load_default="hex", validate=validate.OneOf(["hex", "base64"]))


class TeachableSource(SourceProvider):
    name = "teachable"
    signature = TeachableSignature()
    default_api_base = DEFAULT_API_BASE
    default_on_unknown_fields = "warn"  # no published field list: drift is recorded, not fatal
    options_schema = TeachableSourceOptions
    lanes = {
        "Enrollment.created": "enrollments",
        "Enrollment.completed": "enrollments",
        "Transaction.created": "payments",
        "Transaction.refunded": "payments",
    }
    contracts = CONTRACTS

    def parse(self, body: bytes) -> Any:
        payload = parse_json(body)
        if not isinstance(payload, list):
            return payload
        envelopes = [e for e in payload if isinstance(e, dict)]
        mapped = [e for e in envelopes if e.get("type") in self.lanes]
        if len(mapped) > 1:
            raise BadPayload("batched_events", "One delivery carries several events we act on.")
        if not (mapped or envelopes):
            raise BadPayload("empty_batch", "The delivery carries no event.")
        return (mapped or envelopes)[0]

    def identify(self, payload: Any, body: bytes, headers: Any) -> Identified:
        message = "A Teachable webhook needs a string 'type'."
        kind = required_text(payload, "type", "missing_event_type", message)
        event_id = payload.get("hook_event_id") or payload.get("id")
        if not isinstance(event_id, int | str) or isinstance(event_id, bool):
            raise BadPayload("missing_event_id", "A Teachable webhook needs 'hook_event_id'.")
        return Identified(external_id=f"{kind}:{event_id}", provider_type=kind)

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched | None:
        obj = payload["object"]
        if (obj.get("user") or {}).get("email"):
            return None
        if not ctx.source.options.get("api_key"):
            raise ContractError(
                "the webhook names no user e-mail and the source has no api_key to look it up",
                reason="no_email",
            )
        api = client(ctx.source.api_base, ctx.source.options["api_key"], ctx.http, 10.0)
        user = call(api, "GET", f"/users/{obj['user_id']}").json()
        user = user.get("user", user)
        version = version_ms(parse_instant(payload["created"], TIMESTAMPS, naive_zone=None))
        return Fetched({"user": user}, f"teachable:{event.provider_type}:{obj['id']}", version)

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        obj, kind = payload["object"], event.provider_type
        user = fetched.object["user"] if fetched else obj["user"]
        contact = shape.contact(
            user.get("email"),
            name=user.get("name"),
            external_ids={"teachable_user": str(obj["user_id"])},
        )
        base: dict[str, Any] = {
            "source": event.source,
            "provider": self.name,
            "contact": contact,
            "occurred_at": parse_instant(payload["created"], TIMESTAMPS, naive_zone=None),
        }
        if kind in ENROLLMENT_TYPES:
            part = {
                "id": str(obj["id"]),
                "course_id": str(obj["course_id"]),
                "course_name": (obj.get("course") or {}).get("name"),
                "user_id": str(obj["user_id"]),
                "completed": kind == "Enrollment.completed",
            }
            return shape.event(
                kind.lower(), key=f"teachable:enrollment:{obj['id']}", **base, enrollment=part
            )
        if kind == "Transaction.refunded":
            purchase = _purchase(obj, reason="refunded")
            purchase["amount"] = obj.get("amount_refunded") or purchase["amount"]
            return shape.event(
                "purchase.refunded",
                key=f"teachable:transaction:{obj['id']}:refunded",
                **base,
                purchase=purchase,
            )
        if obj.get("refunded_at") or obj.get("amount_refunded"):
            return Verdict("ignore", "refunded_before_processing")
        return shape.event(
            "purchase.completed",
            key=f"teachable:sale:{obj.get('sale_id') or obj['id']}",
            **base,
            purchase=_purchase(obj),
        )


def _purchase(obj: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    amount = obj.get("final_price") if obj.get("final_price") is not None else obj.get("charge")
    if amount is None:
        raise ContractError("the Teachable transaction has no amount", reason="no_amount")
    plan = obj.get("pricing_plan") or {}
    item = {
        "product": f"teachable:pricing_plan:{obj['pricing_plan_id']}",
        "name": plan.get("name") or (obj.get("course") or {}).get("name"),
        "amount": amount,
    }
    return {
        "id": str(obj.get("sale_id") or obj["id"]),
        "payment_id": str(obj["id"]),
        "amount": int(amount),
        "currency": obj["currency"].lower(),
        "items": [item],
        "reason": reason,
    }


SOURCE = TeachableSource()
