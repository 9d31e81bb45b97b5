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

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from marshmallow import RAISE, Schema, fields, validate

from pipeline.delivery.http import ApiClient
from pipeline.errors import ContractError, PermanentError, PipelineError, RetryableError
from pipeline.providers.base import DeliveryRef, DestinationContext, DestinationProvider
from pipeline.providers.shared.analytics import analytics_name, distinct_id
from pipeline.providers.shared.batches import SEND_BUDGET_SECONDS, budget_spent, settle_batch
from schemas.canonical import to_major_units

BATCH_SIZE = 500
MAX_EVENTS = 25
MAX_BODY_BYTES = 130_000
MAX_NAME = 40
MAX_VALUE = 100
MAX_PARAMS = 25
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_")
# web streams' reserved event names (support.google.com/analytics/answer/13316687)
RESERVED_NAMES = frozenset(
    {
        "ad_impression",
        "app_remove",
        "app_store_refund",
        "app_store_subscription_cancel",
        "app_store_subscription_renew",
        "click",
        "error",
        "file_download",
        "first_open",
        "first_visit",
        "form_start",
        "form_submit",
        "in_app_purchase",
        "page_view",
        "scroll",
        "session_start",
        "user_engagement",
        "view_complete",
        "video_progress",
        "video_start",
        "view_search_results",
    }
)
RECOMMENDED = {"purchase.completed": "purchase", "purchase.refunded": "refund"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_INDEX = re.compile(r"(?:events\[|index: \[)(\d+)\]")
Outcome = dict[str, Any] | Exception


class Ga4Options(Schema):
    class Meta:
        unknown = RAISE

    measurement_id = fields.Str(required=True, validate=validate.Length(min=1))
    api_secret = fields.Str(required=True, validate=validate.Length(min=1))
    validate_first = fields.Bool(data_key="validate", load_default=False)
    client_id_salt = fields.Str(load_default="")
    user_id_from = fields.Str(
        load_default=None
    )  # a contact external_ids kind, e.g. "stripe_customer"
    max_backdate_hours = fields.Float(load_default=72.0, validate=validate.Range(0, 72))


def safe_name(raw: str) -> str | None:
    """`raw` under GA4's naming rules, or None when it cannot be made to follow them."""
    name = _UNSAFE.sub("_", raw.strip())[:MAX_NAME]
    if not name or not (name[0].isascii() and name[0].isalpha()):
        return None
    if name.lower().startswith(RESERVED_PREFIXES) or name in RESERVED_NAMES:
        return None
    return name


def event_name(event: dict[str, Any]) -> str:
    kind = event["type"]
    if kind in RECOMMENDED:
        return RECOMMENDED[kind]
    if not event.get("analytics"):
        return kind.replace(".", "_")[:MAX_NAME]
    name = safe_name(analytics_name(event))
    if name is None:
        raise ContractError(
            "the analytics event's name breaks GA4's naming rules", reason="ga4_name_refused"
        )
    return name


def transaction_id(event: dict[str, Any]) -> str:
    """The purchase's canonical key; a refund names the purchase it undoes by the same key."""
    if event["type"] == "purchase.completed":
        return str(event["key"])[:MAX_VALUE]
    return f"{event['provider']}:{event['purchase']['id']}"[:MAX_VALUE]


def _items(purchase: dict[str, Any]) -> list[dict[str, Any]]:
    currency = purchase["currency"]
    items = []
    for item in purchase.get("items") or []:
        quantity = item.get("quantity") or 1
        entry: dict[str, Any] = {"item_id": item["product"][:MAX_VALUE], "quantity": quantity}
        if item.get("name"):
            entry["item_name"] = item["name"][:MAX_VALUE]
        if item.get("amount") is not None:
            entry["price"] = to_major_units(item["amount"], currency) / quantity
        items.append(entry)
    return items


def _custom(properties: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in properties.items():
        name = safe_name(str(key))
        if name is None or len(params) == MAX_PARAMS:
            continue
        if isinstance(value, bool):
            params[name] = int(value)
        elif isinstance(value, int | float):
            params[name] = value
        elif isinstance(value, str):
            params[name] = value[:MAX_VALUE]
    return params


def event_params(event: dict[str, Any]) -> dict[str, Any]:
    purchase = event.get("purchase")
    if purchase:
        return {
            "transaction_id": transaction_id(event),
            "value": to_major_units(purchase["amount"], purchase["currency"]),
            "currency": purchase["currency"].upper(),
            "items": _items(purchase),
        }
    if event.get("analytics"):
        return _custom(event["analytics"].get("properties") or {})
    return {}


def client_id(event: dict[str, Any], salt: str) -> str:
    given = (event.get("contact") or {}).get("client_id")
    if given:
        return str(given)
    digest = hashlib.sha256(f"stackwire-ga4|{salt}|{distinct_id(event)}".encode()).digest()
    return f"{int.from_bytes(digest[:4], 'big')}.{int.from_bytes(digest[4:8], 'big')}"


def ga4_event(options: Mapping[str, Any], event: dict[str, Any], now: float) -> dict[str, Any]:
    built: dict[str, Any] = {"name": event_name(event), "params": event_params(event)}
    occurred = datetime.fromisoformat(event["occurred_at"]).timestamp()
    if now - occurred <= options["max_backdate_hours"] * 3600:
        built["timestamp_micros"] = int(min(occurred, now) * 1_000_000)
    return built


@dataclass
class Pending:
    delivery_id: int
    event: dict[str, Any]
    size: int


def group(
    options: Mapping[str, Any], items: list[tuple[DeliveryRef, dict[str, Any]]], now: float
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


class Ga4Destination(DestinationProvider):
    name = "ga4"
    kind = "analytics"
    actions = {"track": "analytics"}
    batch_size = BATCH_SIZE
    default_api_base = "https://www.google-analytics.com"
    options_schema = Ga4Options

    def perform_batch(
        self, ctx: DestinationContext, items: list[tuple[DeliveryRef, dict[str, Any]]]
    ) -> dict[int, dict[str, Any] | Exception]:
        options = ctx.destination.options
        groups, results = group(options, items, ctx.now)
        client = ApiClient(
            provider="ga4",
            base_url=ctx.destination.api_base or "",
            session=ctx.http,
            timeout=ctx.destination.timeout_seconds,
        )
        started, stop = time.monotonic(), cast("PipelineError | None", None)
        for (client_key, user), pending in groups.items():
            for chunk in requests_of(pending):
                stop = stop or budget_spent(started, SEND_BUDGET_SECONDS)
                if stop is None:
                    answers, stop = self._send(client, options, client_key, user, chunk)
                else:
                    answers = dict.fromkeys((p.delivery_id for p in chunk), stop)
                results.update(answers)
        return settle_batch(results)

    def _send(
        self,
        client: ApiClient,
        options: Mapping[str, Any],
        client_key: str,
        user: str | None,
        chunk: list[Pending],
    ) -> tuple[dict[int, Outcome], PipelineError | None]:
        """One request (two with `validate`); the error that should stop the batch, if any."""
        params = {"measurement_id": options["measurement_id"], "api_secret": options["api_secret"]}
        envelope: dict[str, Any] = {"client_id": client_key, **({"user_id": user} if user else {})}
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
        sent = {p.delivery_id: {"client_id": client_key, "event": p.event["name"]} for p in chunk}
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
