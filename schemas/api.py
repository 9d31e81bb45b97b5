"""The admin API's contract: what each request may carry and what each answer holds.

The same schemas validate every request (`receivers.api`) and generate `/api/openapi.json`
(apispec), so the document cannot drift from the code. Text parameters refuse NUL and anything
PostgreSQL could not store; unknown parameters are refused, so a typo is named, not ignored.
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

EVENT_STATUSES = (
    "received",
    "verified",
    "processed",
    "waiting",
    "ignored",
    "quarantined",
    "rejected",
    "failed",
)
DEAD_LETTER_STATUSES = ("open", "replayed")
REPLAY_MODES = ("resume", "redeliver", "reroute")
MAX_TEXT = 300


class Text(fields.String):
    """A string an operator typed: no NUL or other control characters, bounded."""

    def __init__(self, *, max_length: int = MAX_TEXT, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(min=1, max=max_length), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF for ch in text):
            raise ValidationError("Control characters are not allowed.")
        return text


MAX_ID = 2**63 - 1  # PostgreSQL's bigint


def _storable(value: Any, depth: int = 0) -> bool:
    if depth > 8:
        return False
    if isinstance(value, str):
        return "\x00" not in value and not any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, dict):
        return all(_storable(k, depth) and _storable(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(item, depth + 1) for item in value)
    return True


class JsonObject(fields.String):
    """A JSON object given as text (a query parameter): parsed, and refused when PostgreSQL's
    jsonb could not hold it (NUL, lone surrogates) or it nests deeper than 8."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        raw: str = super()._deserialize(value, attr, data, **kwargs)
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ValidationError("Must be a JSON object.") from None
        if not isinstance(parsed, dict) or not parsed:
            raise ValidationError("Must be a non-empty JSON object.")
        if not _storable(parsed):
            raise ValidationError("Holds a value no event can contain.")
        return parsed


class Strict(Schema):
    class Meta:
        unknown = RAISE


class EventFilters(Strict):
    email = fields.Email(metadata={"description": "Matched on the keyed hash of its normal form."})
    payment_id = Text(metadata={"description": "Stripe payment intent or charge, PayPal capture."})
    provider_event_id = Text()
    source = Text(max_length=63)
    type = Text(max_length=120, metadata={"description": "Provider or canonical type; * ? globs."})
    status = fields.String(validate=validate.OneOf(EVENT_STATUSES))
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    q = JsonObject(
        validate=validate.Length(min=2, max=2000),
        metadata={"description": 'JSON object the canonical event contains: {"purchase":{…}}'},
    )


class EventSearch(EventFilters):
    cursor = Text(max_length=200)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class DeadLetterSearch(EventSearch):
    status = fields.String(validate=validate.OneOf(DEAD_LETTER_STATUSES))
    destination = Text(max_length=63)
    failure_class = Text(max_length=40)


class ReplayRequest(Strict):
    mode = fields.String(load_default="resume", validate=validate.OneOf(REPLAY_MODES))
    force = fields.Boolean(load_default=False)
    filter = fields.Nested(EventFilters, load_default=dict)
    destination = Text(max_length=63)
    failure_class = Text(max_length=40)
    event_ids = fields.List(
        fields.Integer(validate=validate.Range(1, MAX_ID)), validate=validate.Length(max=10_000)
    )
    dead_letter_ids = fields.List(
        fields.Integer(validate=validate.Range(1, MAX_ID)), validate=validate.Length(max=10_000)
    )

    @validates_schema
    def _narrowed(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = (
            data.get("filter")
            or data.get("event_ids")
            or data.get("dead_letter_ids")
            or data.get("destination")
            or data.get("failure_class")
        )
        if not given and data.get("mode") != "resume":
            raise ValidationError(
                "A redeliver or reroute plan needs a filter, event_ids or dead_letter_ids.",
                "filter",
            )


class ExecuteRequest(Strict):
    reason = Text(required=True, max_length=1000)


class EventReplayRequest(Strict):
    from_ = fields.String(
        data_key="from", load_default="deliver", validate=validate.OneOf(("fetch", "deliver"))
    )
    force = fields.Boolean(load_default=False)
    reason = Text(load_default="replay of one event", max_length=1000)


class PauseRequest(Strict):
    reason = Text(max_length=1000)


class AuditSearch(Strict):
    action = Text(max_length=60)
    cursor = Text(max_length=200)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class ProgressQuery(Strict):
    items = fields.Integer(load_default=200, validate=validate.Range(0, 1000))


# ---- answers -----------------------------------------------------------------------------


class ErrorBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)


class ErrorAnswer(Schema):
    error = fields.Nested(ErrorBody, required=True)


class EventSummary(Schema):
    id = fields.Integer(required=True)
    source = fields.String(required=True)
    provider = fields.String(required=True)
    provider_event_id = fields.String(required=True)
    provider_type = fields.String(required=True)
    canonical_type = fields.String(allow_none=True)
    status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    lane = fields.String(required=True)
    origin = fields.String(allow_none=True)
    trace_id = fields.String(allow_none=True)
    received_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    redeliveries = fields.Integer(required=True)
    replays = fields.Integer(required=True)
    deliveries = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class EventPage(Schema):
    data = fields.List(fields.Nested(EventSummary), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class DeadLetterSummary(Schema):
    id = fields.Integer(required=True)
    event_id = fields.Integer(required=True)
    delivery_id = fields.Integer(allow_none=True)
    step = fields.String(required=True)
    failure_class = fields.String(required=True)
    reason = fields.String(required=True)
    error = fields.String(allow_none=True)
    status = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    replayed_at = fields.DateTime(allow_none=True)
    replay_count = fields.Integer(required=True)
    destination = fields.String(allow_none=True)
    action = fields.String(allow_none=True)
    source = fields.String(required=True)
    provider_event_id = fields.String(required=True)
    provider_type = fields.String(required=True)
    canonical_type = fields.String(allow_none=True)


class DeadLetterPage(Schema):
    data = fields.List(fields.Nested(DeadLetterSummary), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class Attempt(Schema):
    number = fields.Integer(required=True)
    started_at = fields.DateTime(required=True)
    duration_ms = fields.Float(required=True)
    outcome = fields.String(required=True)
    http_status = fields.Integer(allow_none=True)
    error_class = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    worker = fields.String(allow_none=True)


class TraceDelivery(Schema):
    id = fields.Integer(required=True)
    action = fields.String(required=True)
    destination = fields.String(required=True)
    lane = fields.String(required=True)
    status = fields.String(required=True)
    idempotency_key = fields.String(required=True)
    attempts = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    delivered_at = fields.DateTime(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    attempt_log = fields.List(fields.Nested(Attempt), required=True)


class TraceStep(Schema):
    step = fields.String(required=True)
    outcome = fields.String(required=True)
    at = fields.DateTime(required=True)
    duration_ms = fields.Float(allow_none=True)
    detail = fields.Dict(allow_none=True)


class TraceRequest(Schema):
    origin = fields.String(required=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    secret_matched = fields.String(allow_none=True)
    body_bytes = fields.Integer(required=True)
    body_sha256 = fields.String(required=True)


class TraceEvent(Schema):
    id = fields.Integer(required=True)
    source = fields.String(required=True)
    provider = fields.String(required=True)
    provider_event_id = fields.String(required=True)
    provider_type = fields.String(required=True)
    canonical_type = fields.String(allow_none=True)
    status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    lane = fields.String(required=True)
    trace_id = fields.String(allow_none=True)
    received_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    redeliveries = fields.Integer(required=True)
    conflicts = fields.Integer(required=True)
    last_redelivery_at = fields.DateTime(allow_none=True)
    replays = fields.Integer(required=True)


class TraceFetched(Schema):
    object_key = fields.String(allow_none=True)
    version = fields.Integer(allow_none=True)


class TraceDeadLetter(Schema):
    id = fields.Integer(required=True)
    delivery_id = fields.Integer(allow_none=True)
    step = fields.String(required=True)
    failure_class = fields.String(required=True)
    reason = fields.String(required=True)
    error = fields.String(allow_none=True)
    status = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    replayed_at = fields.DateTime(allow_none=True)
    replay_count = fields.Integer(required=True)


class TraceReplay(Schema):
    plan_id = fields.String(required=True)
    mode = fields.String(required=True)
    plan_status = fields.String(required=True)
    delivery_id = fields.Integer(allow_none=True)
    dead_letter_id = fields.Integer(allow_none=True)
    status = fields.String(required=True)
    outcome = fields.String(allow_none=True)
    done_at = fields.DateTime(allow_none=True)


class AuditRow(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    reason = fields.String(allow_none=True)
    plan_id = fields.String(allow_none=True)
    target = fields.String(allow_none=True)
    events = fields.Integer()
    counts = fields.Dict(allow_none=True)


class Trace(Schema):
    event = fields.Nested(TraceEvent, required=True)
    request = fields.Nested(TraceRequest, required=True)
    steps = fields.List(fields.Nested(TraceStep), required=True)
    fetched = fields.Nested(TraceFetched, required=True)
    canonical = fields.Dict(allow_none=True, required=True)
    deliveries = fields.List(fields.Nested(TraceDelivery), required=True)
    dead_letters = fields.List(fields.Nested(TraceDeadLetter), required=True)
    replays = fields.List(fields.Nested(TraceReplay), required=True)
    audit = fields.List(fields.Nested(AuditRow), required=True)


class ReplayItem(Schema):
    position = fields.Integer(required=True)
    event_id = fields.Integer(required=True)
    delivery_id = fields.Integer(allow_none=True)
    dead_letter_id = fields.Integer(allow_none=True)
    destination = fields.String(allow_none=True)
    status = fields.String(required=True)
    outcome = fields.String(allow_none=True)
    done_at = fields.DateTime(allow_none=True)


class PlanAnswer(Schema):
    plan_id = fields.String(required=True)
    mode = fields.String(required=True)
    force = fields.Boolean(required=True)
    status = fields.String(required=True)
    count = fields.Integer(required=True)
    by_destination = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    by_failure_class = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    sample_event_ids = fields.List(fields.Integer(), required=True)
    provider_calls = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    estimated_seconds = fields.Float(required=True)


class ProgressAnswer(PlanAnswer):
    filters = fields.Dict(required=True)
    reason = fields.String(allow_none=True)
    created_by = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    executed_by = fields.String(allow_none=True)
    executed_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    done = fields.Integer(required=True)
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    by_outcome = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    items = fields.List(fields.Nested(ReplayItem), required=True)
    already = fields.Boolean()


class RateBudget(Schema):
    per_second = fields.Float(allow_none=True)
    burst = fields.Integer(allow_none=True)
    tokens_now = fields.Float(allow_none=True)


class DestinationState(Schema):
    name = fields.String(required=True)
    provider = fields.String(required=True)
    lane = fields.String(allow_none=True)
    paused = fields.Boolean(required=True)
    circuit = fields.String(required=True)
    held = fields.Integer(required=True)
    open = fields.Integer(required=True)
    dead = fields.Integer(required=True)
    rate_limit = fields.Nested(RateBudget, required=True)


class DestinationList(Schema):
    data = fields.List(fields.Nested(DestinationState), required=True)


class PauseAnswer(Schema):
    name = fields.String(required=True)
    paused = fields.Boolean(required=True)
    released = fields.Integer(required=True)


class ServerState(Schema):
    name = fields.String(required=True)
    address = fields.String(required=True)
    reachable = fields.Boolean(required=True)
    detail = fields.String(required=True)


class LaneState(Schema):
    name = fields.String(required=True)
    queued = fields.Integer(allow_none=True)
    workers = fields.Integer(allow_none=True)
    oldest_age_seconds = fields.Float(allow_none=True)


class JobState(Schema):
    name = fields.String(required=True)
    last_run = fields.Float(allow_none=True)
    seconds_ago = fields.Float(allow_none=True)
    overdue = fields.Boolean(required=True)


class StatusAnswer(Schema):
    servers = fields.List(fields.Nested(ServerState), required=True)
    lanes = fields.List(fields.Nested(LaneState), required=True)
    jobs = fields.List(fields.Nested(JobState), allow_none=True, required=True)
    dead_letters = fields.Dict(
        keys=fields.String(), values=fields.Integer(), allow_none=True, required=True
    )
    problems = fields.List(fields.String(), required=True)


class AuditPage(Schema):
    data = fields.List(fields.Nested(AuditRow), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
