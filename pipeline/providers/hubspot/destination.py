"""HubSpot CRM as a destination: contacts upserted by e-mail, up to 100 per call.

API (developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts):
`POST /crm/v3/objects/contacts/batch/upsert` (or the dated `/crm/objects/<YYYY-MM>/contacts/...`,
same body; option `api_version`), `Authorization: Bearer <private-app or OAuth token>`, body
`{"inputs": [{"idProperty": "email", "id": <email>, "objectWriteTraceId", "properties"}]}`.
An upsert by the unique `email` property is idempotent by nature: a retry or a replay updates the
same contact. Contacts are a contact system, so `upsert` runs on the enrollments lane.

What this module relies on, and where it comes from:
- A batch naming the same id twice is refused whole (400 "Duplicate IDs found in batch input",
  `context.ids`; rudderlabs/rudder-transformer HubSpot delivery tests, segmentio/action-destinations
  PR 3969), so deliveries for one person are collapsed into one input (later events win) and every
  one of them gets that input's result. HubSpot lower-cases e-mails, so they are compared lower-cased.
- With a unique `objectWriteTraceId` per input a partial failure answers 207 with `errors[]` whose
  `context.objectWriteTraceId` names the failed inputs (developers.hubspot.com/docs/api-reference/
  error-handling "Multi-status errors"; rudderlabs/rudder-transformer `handle207MultiStatus`):
  those fail for good, the rest are delivered. Results are matched by trace id, else by e-mail.
- 429 bodies carry `policyName`: `DAILY` (resets at midnight in the account's time zone, option
  `account_timezone`) or `TEN_SECONDLY_ROLLING` (HubSpot usage guidelines, quoted second-hand).
  `Retry-After` wins when sent; otherwise a daily limit waits until the reset (the pipeline parks
  a long wait in the database) and a rolling one waits `X-HubSpot-RateLimit-Interval-Milliseconds`
  (10 s when absent). A `...-Remaining: 0` header on a success defers the rest of the batch.
Unverified, kept configurable: the 100-input cap ([U] in our fact sheet; a live probe in a
third-party README saw 400 at 101) is option `inputs_per_request` (1..100); the header names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import requests
from marshmallow import ValidationError, fields, validate, validates

from pipeline.delivery.http import ApiClient, parse_retry_after
from pipeline.errors import ContractError, PermanentError, PipelineError, RetryableError
from pipeline.logging import redact
from pipeline.providers.base import Batch, DestinationContext, DestinationProvider, Outcome
from pipeline.providers.shared.batches import send_until_stopped, settle_batch
from pipeline.providers.shared.clients import destination_client
from pipeline.providers.shared.contacts import names, require_email
from pipeline.providers.shared.instants import stored_instant, validate_zone
from pipeline.providers.shared.options import StrictOptions
from schemas.canonical import CANONICAL_TYPES

MAX_INPUTS = 100
DEFAULT_INTERVAL = 10.0  # the rolling window of TEN_SECONDLY_ROLLING
RESET_MARGIN = 60.0  # come back a minute after midnight, not on the stroke of it


class HubSpotOptions(StrictOptions):
    access_token = fields.Str(required=True, validate=validate.Length(min=1))
    api_version = fields.Str(load_default="v3", validate=validate.Regexp(r"^(v3|\d{4}-\d{2})$"))
    inputs_per_request = fields.Int(load_default=MAX_INPUTS, validate=validate.Range(1, MAX_INPUTS))
    # canonical type (globs allowed) -> static contact properties, e.g. lifecyclestage = "customer"
    properties = fields.Dict(
        keys=fields.Str(),
        values=fields.Dict(keys=fields.Str(validate=validate.Length(min=1)), values=fields.Raw()),
        load_default=dict,
    )
    account_timezone = fields.Str(load_default="UTC", validate=validate_zone)

    @validates("properties")
    def _types_and_values(self, value: Mapping[str, Mapping[str, Any]], **kwargs: Any) -> None:
        for pattern, static in value.items():
            if not any(fnmatch.fnmatchcase(t, pattern) for t in CANONICAL_TYPES):
                raise ValidationError(f"{pattern!r} matches no canonical event type.")
            for name, item in static.items():
                if not isinstance(item, str | int | float | bool):
                    raise ValidationError(f"{pattern}.{name}: a property value must be a scalar.")


@dataclass
class ContactInput:
    """One person's upsert, built from every delivery about them in this batch."""

    email: str
    properties: dict[str, str]
    deliveries: list[int] = field(default_factory=list)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def contact_properties(options: Mapping[str, Any], event: dict[str, Any]) -> dict[str, str]:
    first, last = names(event)
    properties = {k: v for k, v in (("firstname", first), ("lastname", last)) if v}
    for pattern, static in (options.get("properties") or {}).items():
        if fnmatch.fnmatchcase(event["type"], pattern):
            properties.update({name: _text(value) for name, value in static.items()})
    return properties


def collapse(
    options: Mapping[str, Any], items: Batch
) -> tuple[list[ContactInput], dict[int, Outcome]]:
    """One input per person, in the order events happened (so the latest values win)."""
    inputs: dict[str, ContactInput] = {}
    failed: dict[int, Outcome] = {}
    ordered = sorted(items, key=lambda item: stored_instant(item[1]["occurred_at"]))
    for delivery, event in ordered:
        try:
            email = require_email(event).strip().lower()
        except ContractError as exc:
            failed[delivery.id] = exc
            continue
        person = inputs.setdefault(email, ContactInput(email, {"email": email}))
        person.properties.update(contact_properties(options, event))
        person.deliveries.append(delivery.id)
    return list(inputs.values()), failed


def until_reset(now: float, zone: str) -> float:
    """Seconds until the next midnight in the account's time zone (when the daily quota resets)."""
    tz = ZoneInfo(zone)
    tomorrow = (datetime.fromtimestamp(now, tz) + timedelta(days=1)).date()
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz)
    return max(midnight.timestamp() - now, 0.0) + RESET_MARGIN


def _interval(headers: Mapping[str, str]) -> float:
    try:
        return float(headers["X-HubSpot-RateLimit-Interval-Milliseconds"]) / 1000
    except (KeyError, ValueError):
        return DEFAULT_INTERVAL


def rate_limited(response: requests.Response, zone: str, now: float) -> RetryableError:
    body = _json(response)
    policy = str(body.get("policyName") or "unknown")
    wait = parse_retry_after(response.headers.get("Retry-After"), now)
    if wait is None:
        wait = until_reset(now, zone) if policy == "DAILY" else _interval(response.headers)
    return RetryableError(
        f"HubSpot rate limit reached ({policy})",
        retry_after=wait,
        http_status=429,
        reason="rate_limited_daily" if policy == "DAILY" else "rate_limited",
    )


def headroom_exhausted(response: requests.Response, zone: str, now: float) -> RetryableError | None:
    """A success that says the quota is now used up: the rest of the batch waits for the reset."""
    headers = response.headers
    if headers.get("X-HubSpot-RateLimit-Daily-Remaining") == "0":
        wait = until_reset(now, zone)
    elif "0" in (
        headers.get("X-HubSpot-RateLimit-Remaining"),
        headers.get("X-HubSpot-RateLimit-Secondly-Remaining"),
    ):
        wait = _interval(headers)
    else:
        return None
    return RetryableError(
        "HubSpot rate limit headroom used up", retry_after=wait, reason="rate_limit_headroom"
    )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _rejected(error: dict[str, Any], status: int) -> PermanentError:
    """HubSpot's codes and property names; its message echoes the values (an invalid address is
    not caught by `redact`), so it is used only when there is nothing else to say."""
    category = str(error.get("category") or "error")
    details = [
        f"{item.get('code', 'INVALID')} on {','.join((item.get('context') or {}).get('propertyName') or ['?'])}"
        for item in error.get("errors") or []
        if isinstance(item, dict)
    ]
    said = "; ".join(details) or redact(str(error.get("message") or "rejected"))
    return PermanentError(
        f"HubSpot rejected the contact ({category}): {said[:200]}",
        reason="contact_rejected",
        http_status=status,
    )


def outcomes(body: dict[str, Any], chunk: list[ContactInput], status: int) -> list[Outcome]:
    """Each input's result or error, matched by objectWriteTraceId, else by e-mail."""
    by_trace = {str(index): index for index in range(len(chunk))}
    by_email = {person.email: index for index, person in enumerate(chunk)}
    found: dict[int, Outcome] = {}
    for error in body.get("errors") or []:
        context = error.get("context") or {}
        named = [by_trace.get(str(t)) for t in context.get("objectWriteTraceId") or []]
        named += [by_email.get(str(i).lower()) for i in context.get("ids") or []]
        for index in (i for i in named if i is not None):
            found[index] = _rejected(error, status)
    for result in body.get("results") or []:
        email = str((result.get("properties") or {}).get("email") or "").lower()
        traced = by_trace.get(str(result.get("objectWriteTraceId")))
        position = traced if traced is not None else by_email.get(email)
        if position is not None and position not in found:
            found[position] = {"contact_id": result.get("id"), "new": bool(result.get("new"))}
    missing = PermanentError(
        "HubSpot answered without a result for this contact",
        reason="missing_result",
        http_status=status,
    )
    return [found.get(index, missing) for index in range(len(chunk))]


def _unsent(chunk: list[ContactInput], stop: PipelineError) -> list[Outcome]:
    return [stop] * len(chunk)


class HubSpotDestination(DestinationProvider):
    name = "hubspot"
    kind = "crm"
    actions = {"upsert": "enrollments"}
    batch_size = MAX_INPUTS
    default_api_base = "https://api.hubapi.com"
    options_schema = HubSpotOptions

    def perform_batch(self, ctx: DestinationContext, items: Batch) -> dict[int, Outcome]:
        options = ctx.destination.options
        inputs, results = collapse(options, items)
        client = destination_client(
            ctx, "hubspot", headers={"Authorization": f"Bearer {options['access_token']}"}
        )
        size = options["inputs_per_request"]
        chunks = (inputs[start : start + size] for start in range(0, len(inputs), size))
        send = partial(self._send, client, options, now=ctx.now)
        for chunk, answers in send_until_stopped(chunks, send, _unsent):
            for person, answer in zip(chunk, answers, strict=True):
                shared = (
                    answer
                    if isinstance(answer, Exception)
                    else {**answer, "deliveries_collapsed": len(person.deliveries)}
                )
                results.update(dict.fromkeys(person.deliveries, shared))
        return settle_batch(results)

    def _send(
        self,
        client: ApiClient,
        options: Mapping[str, Any],
        chunk: list[ContactInput],
        *,
        now: float,
    ) -> tuple[list[Outcome], PipelineError | None]:
        """One request; the error that should stop the rest of the batch, if any."""
        version = options["api_version"]
        path = (
            "/crm/v3/objects/contacts/batch/upsert"
            if version == "v3"
            else f"/crm/objects/{version}/contacts/batch/upsert"
        )
        inputs = [
            {
                "idProperty": "email",
                "id": person.email,
                "objectWriteTraceId": str(index),
                "properties": person.properties,
            }
            for index, person in enumerate(chunk)
        ]
        try:
            response = client.request("POST", path, json={"inputs": inputs}, accept=(400, 429))
            if response.status_code == 429:
                raise rate_limited(response, options["account_timezone"], now)
        except RetryableError as exc:
            return [exc] * len(chunk), exc
        except PermanentError as exc:
            # a 401/403 fails everything after it the same way; another 4xx only this request
            stop = exc if exc.http_status in (401, 403) else None
            return [exc] * len(chunk), stop
        body = _json(response)
        if response.status_code == 400:
            # the request as a whole was refused (per-input problems come back as a 207)
            return [_rejected(body, 400)] * len(chunk), None
        headroom = headroom_exhausted(response, options["account_timezone"], now)
        return outcomes(body, chunk, response.status_code), headroom


DESTINATION = HubSpotDestination()
