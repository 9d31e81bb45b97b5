"""Standard Webhooks as a source, and the canonical envelope every generic source carries.

Any sender that speaks Standard Webhooks (standard-webhooks/standard-webhooks
`spec/standard-webhooks.md`; Svix, Resend, a creator's own code) can post canonical events here
without a provider module: the signature is checked by `receivers.schemes.standard_webhooks`,
the body is the canonical envelope (`schemas.contracts.generic`), the `webhook-id` header is the
event id (the spec: "use the webhook-id header as an idempotency key"; it stays the same across
the sender's retries). The lane follows the canonical type (`schemas.canonical.lane_of`); the
event is complete as sent, so nothing is fetched. Secrets are `whsec_` + base64 (24-64 bytes).

`EnvelopeSource` holds what both generic sources share; `generic_hmac` reuses it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema

from pipeline.errors import BadPayload
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, Identified, SourceContext, SourceProvider, Verdict
from pipeline.providers.shared import shape
from pipeline.providers.shared.instants import Complaint, Refusals, parse_instant
from pipeline.signatures.standard_webhooks import StandardWebhooks
from schemas.canonical import is_canonical_type, lane_of
from schemas.contracts.generic import PARTS, SUBJECT_KEY_MAX, envelope_contract

MAX_TYPE_CHARS = 120
# the envelope's `occurred_at` is an instant with its offset (schemas.contracts.generic)
_UNREADABLE = Complaint("occurred_at is not an ISO 8601 instant", "bad_occurred_at")
OCCURRED_AT = Refusals(
    _UNREADABLE, _UNREADABLE, Complaint("occurred_at has no UTC offset", "bad_occurred_at")
)


class EnvelopeSource(SourceProvider):
    """A source whose events are canonical envelopes: no fetch, lane and contract by type."""

    default_on_unknown_fields = "warn"  # the sender's extra fields are recorded as drift, not lost

    def lane_for(self, provider_type: str) -> str | None:
        # a type outside the canonical vocabulary is stored and ignored, never guessed at
        return lane_of(provider_type) if is_canonical_type(provider_type) else None

    def contract_for(self, provider_type: str, payload: Any) -> type[Schema] | None:
        if not is_canonical_type(provider_type):
            return None
        return envelope_contract(provider_type.split(".", 1)[0])

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        data = payload["data"]
        parts = {name: data[name] for name in PARTS if data.get(name) is not None}
        return shape.event(
            event.provider_type,
            key=f"{event.source}:{subject(payload, event.external_id)}",
            source=event.source,
            provider=self.name,
            occurred_at=parse_instant(payload["occurred_at"], OCCURRED_AT, naive_zone=None),
            **parts,
        )


def subject(payload: Mapping[str, Any], external_id: str) -> str:
    """What the event is about: `data.key`, else the envelope's id, else the event id."""
    found = payload["data"].get("key") or payload.get("id") or external_id
    text = str(found)
    if len(text) > SUBJECT_KEY_MAX:
        # the canonical key has a length limit; a long id keeps its identity as a hash
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def event_type(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TYPE_CHARS:
        raise BadPayload(
            "missing_event_type", "The event needs a string 'type' (a canonical type)."
        )
    return value


class StandardWebhooksSource(EnvelopeSource):
    name = "standard_webhooks"
    signature = StandardWebhooks()
    stored_headers = (
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        *SourceProvider.stored_headers,
    )

    def identify(self, payload: Any, body: bytes, headers: Mapping[str, str]) -> Identified:
        if not isinstance(payload, dict):
            raise BadPayload("not_an_envelope", "The body must be a JSON object (an envelope).")
        # the scheme has already checked that the header is there and well formed
        return Identified(
            external_id=headers["webhook-id"], provider_type=event_type(payload.get("type"))
        )


SOURCE = StandardWebhooksSource()
