"""GA4 Measurement Protocol as a destination: events sent server-side, 25 per request per client.

API (developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events, /reference,
/validating-events): `POST /mp/collect?measurement_id=…&api_secret=…` with
`{"client_id", "user_id"?, "events": [{"name", "params", "timestamp_micros"}]}`; at most 25 events
per request and a body under 130 kB; names ≤ 40 characters of letters, digits and underscores,
starting with a letter; reserved prefixes `_`, `firebase_`, `ga_`, `google_`
(support.google.com/analytics/answer/13316687). A request carries ONE client_id, so a claimed
batch is grouped by client (and user id), each group cut into requests of ≤ 25 events.
Success is 204 with an empty body (AzuraCast/AzuraCast#6033, aawnu/php-ga4#18).

Mapping: purchase.completed -> `purchase` with `transaction_id` (the canonical key), `value`,
`currency`, `items`; purchase.refunded -> `refund` with the same transaction_id (the purchase's
key, `<provider>:<purchase id>`); analytics.* -> its own name made GA4-safe (refused when it cannot
be); any other type -> its name with dots as underscores. `timestamp_micros` comes from
occurred_at, left out beyond the 72-hour backdating window GA4 accepts (option
`max_backdate_hours`), so a late replay is recorded at its arrival instead of being dropped.

client_id: the canonical contact's `client_id` when the source gave one (it ties the event to the
browser's session); else a pseudonymous id in GA's `<int>.<int>` shape derived from the contact
hash (never the raw e-mail) and the option `client_id_salt`, stable across retries and replays.

GA4 answers 2xx even for malformed events, so they vanish silently. `validate = true` first posts
each request to `/debug/mp/collect` and fails the events it reports (validationMessages) for good,
sending the rest. It is off by default: it doubles the calls, the validation server is meant for
development (no stated availability), and it does not check api_secret, the likeliest mistake.
Unverified: how GA4 treats timestamps older than 72 h (dropped, we assume); the 204 status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from marshmallow import fields, validate

from pipeline.delivery.http import ApiClient
from pipeline.errors import ContractError, PermanentError, PipelineError, RetryableError
from pipeline.providers.base import Batch, DestinationContext, Outcome
from pipeline.providers.ga4.events import client_id, ga4_event
from pipeline.providers.shared.analytics import AnalyticsDestination
from pipeline.providers.shared.batches import send_until_stopped, settle_batch
from pipeline.providers.shared.clients import destination_client
from pipeline.providers.shared.options import StrictOptions

BATCH_SIZE = 500
MAX_EVENTS = 25
MAX_BODY_BYTES = 130_000
_INDEX = re.compile(r"(?:events\[|index: \[)(\d+)\]")


class Ga4Options(StrictOptions):
    measurement_id = fields.Str(required=True, validate=validate.Length(min=1))
    api_secret = fields.Str(required=True, validate=validate.Length(min=1))
    validate_first = fields.Bool(data_key="validate", load_default=False)
    client_id_salt = fields.Str(load_default="")
    user_id_from = fields.Str(
        load_default=None
    )  # a contact external_ids kind, e.g. "stripe_customer"
    max_backdate_hours = fields.Float(load_default=72.0, validate=validate.Range(0, 72))


@dataclass
class Pending:
    delivery_id: int
    event: dict[str, Any]
    size: int


def group(
    options: Mapping[str, Any], items: Batch, now: float
) -> tuple[dict[tuple[str, str | None], list[Pending]], dict[int, Outcome]]:
    groups: dict[tuple[str, str | None], list[Pending]] = {}
    failed: dict[int, Outcome] = {}
    kind = options.get("user_id_from")
    for delivery, event in items:
        try:
            built = ga4_event(options, event, now)
        except ContractError as exc:
            failed[delivery.id] = exc
            continue
        user = ((event.get("contact") or {}).get("external_ids") or {}).get(kind) if kind else None
        key = (client_id(event, options["client_id_salt"]), str(user) if user else None)
        size = len(json.dumps(built, separators=(",", ":"))) + 1
        groups.setdefault(key, []).append(Pending(delivery.id, built, size))
    return groups, failed


def requests_of(pending: list[Pending]) -> list[list[Pending]]:
    """≤ 25 events and ≤ 130 kB a request (the envelope is counted generously)."""
    chunks: list[list[Pending]] = []
    current: list[Pending] = []
    size = 200
    for item in pending:
        if current and (len(current) == MAX_EVENTS or size + item.size > MAX_BODY_BYTES):
            chunks.append(current)
            current, size = [], 200
        current.append(item)
        size += item.size
    return [*chunks, current] if current else chunks


def invalid_events(messages: list[dict[str, Any]], count: int) -> dict[int, str]:
    """validationMessages -> {event index: description}; one without an index concerns them all."""
    found: dict[int, str] = {}
    for message in messages:
        text = str(message.get("description") or message.get("validationCode") or "invalid")
        match = _INDEX.search(f"{message.get('fieldPath', '')} {text}")
        named = int(match.group(1)) if match else None
        indexes = [named] if named is not None and named < count else range(count)
        for index in indexes:
            found.setdefault(index, f"{message.get('validationCode', 'INVALID')}: {text}"[:200])
    return found


@dataclass
class Request:
    """One POST: GA4 takes one client id (and user id) per request."""

    client_id: str
    user_id: str | None
    events: list[Pending]


def _unsent(request: Request, stop: PipelineError) -> dict[int, Outcome]:
    return dict.fromkeys((p.delivery_id for p in request.events), stop)


class Ga4Destination(AnalyticsDestination):
    name = "ga4"
    batch_size = BATCH_SIZE
    default_api_base = "https://www.google-analytics.com"
    options_schema = Ga4Options

    def perform_batch(self, ctx: DestinationContext, items: Batch) -> dict[int, Outcome]:
        options = ctx.destination.options
        groups, results = group(options, items, ctx.now)
        client = destination_client(ctx, "ga4")
        requests = (
            Request(client_key, user, chunk)
            for (client_key, user), pending in groups.items()
            for chunk in requests_of(pending)
        )
        send = partial(self._send, client, options)
        for _, answers in send_until_stopped(requests, send, _unsent):
            results.update(answers)
        return settle_batch(results)

    def _send(
        self, client: ApiClient, options: Mapping[str, Any], request: Request
    ) -> tuple[dict[int, Outcome], PipelineError | None]:
        """One request (two with `validate`); the error that should stop the batch, if any."""
        params = {"measurement_id": options["measurement_id"], "api_secret": options["api_secret"]}
        user, chunk = request.user_id, request.events
        envelope: dict[str, Any] = {
            "client_id": request.client_id,
            **({"user_id": user} if user else {}),
        }
        answers: dict[int, Outcome] = {}
        try:
            if options["validate_first"]:
                answers, chunk = self._validate(client, params, envelope, chunk)
            if chunk:
                body = {**envelope, "events": [p.event for p in chunk]}
                client.request("POST", "/mp/collect", params=params, json=body)
        except PipelineError as exc:
            stop = exc if isinstance(exc, RetryableError) or exc.http_status in (401, 403) else None
            return {**answers, **dict.fromkeys((p.delivery_id for p in chunk), exc)}, stop
        sent = {
            p.delivery_id: {"client_id": request.client_id, "event": p.event["name"]} for p in chunk
        }
        return {**answers, **sent}, None

    def _validate(
        self,
        client: ApiClient,
        params: dict[str, str],
        envelope: dict[str, Any],
        chunk: list[Pending],
    ) -> tuple[dict[int, Outcome], list[Pending]]:
        """Failures for what the validation server reports, and the events left to send."""
        body = {**envelope, "events": [p.event for p in chunk]}
        answer = client.request("POST", "/debug/mp/collect", params=params, json=body)
        try:
            messages = answer.json().get("validationMessages") or []
        except (ValueError, AttributeError):
            raise RetryableError(
                "GA4's validation server answered something unreadable",
                reason="ga4_debug_unreadable",
            ) from None
        bad = invalid_events(messages, len(chunk))
        failed: dict[int, Outcome] = {
            chunk[index].delivery_id: PermanentError(
                f"GA4 validation refused the event: {text}", reason="ga4_invalid_event"
            )
            for index, text in bad.items()
        }
        return failed, [p for i, p in enumerate(chunk) if i not in bad]


DESTINATION = Ga4Destination()
