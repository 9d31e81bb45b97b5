"""The first two links of the chain: verify, then fetch the full object and plan the deliveries.

verify: the payload against its contract (drift recorded, broken contracts quarantined), any
check beyond the HMAC (PayPal's postback, payment finality). fetch: the object's current state
from the provider's API (webhooks are pointers), the ordering guard, the canonical event, the
contact, and one delivery row per action the flows ask for. Each commits, then publishes.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Connection, text

from pipeline import dispatch
from pipeline.deadletter import fail_event, quarantine_event
from pipeline.drift import record_drift
from pipeline.errors import ConfigurationError, PermanentError, RetryableError
from pipeline.events import load_event, move
from pipeline.identity import resolve_contact
from pipeline.models import EventStatus
from pipeline.planning import plan_deliveries
from pipeline.providers.base import (
    BadPayload,
    Fetched,
    SourceContext,
    SourceProvider,
    StoredEvent,
    Verdict,
)
from pipeline.providers.registry import source_provider
from pipeline.queueing import publish_deliveries
from pipeline.retry import MAX_COUNTDOWN, next_delay, within_window
from pipeline.runtime import Runtime
from schemas.canonical import validate_canonical
from schemas.contracts.base import ContractReport, check

log = logging.getLogger(__name__)
VERDICT_STATUS = {
    "wait": EventStatus.WAITING,
    "ignore": EventStatus.IGNORED,
    "reject": EventStatus.REJECTED,
}

CLAIM_OBJECT_VERSION = text(
    """
    INSERT INTO object_versions (object_key, version, event_id)
    VALUES (:key, :version, :event_id)
    ON CONFLICT (object_key) DO UPDATE SET
        version = EXCLUDED.version, event_id = EXCLUDED.event_id, updated_at = now()
    WHERE object_versions.version <= EXCLUDED.version
    RETURNING event_id
    """
)
# the window runs from receipt, or from the last replay
WINDOW_START = text(
    """
    SELECT greatest(e.received_at, coalesce(max(s.at), e.received_at))
    FROM events e LEFT JOIN event_steps s ON s.event_id = e.id AND s.step = 'replay'
    WHERE e.id = :id GROUP BY e.received_at
    """
)
DISPATCHED_UNTIL = text(
    "UPDATE events SET dispatched_at = now() + make_interval(secs => :delay) WHERE id = :id"
)
# verified -> processed with the canonical event and the fetched object, and the step, at once
PROCESS_EVENT = text(
    """
    WITH moved AS (
        UPDATE events SET status = 'processed', reason = NULL, updated_at = now(),
            canonical_type = :type, canonical = CAST(:canonical AS jsonb),
            fetched = CAST(:fetched AS json), object_key = :object_key
        WHERE id = :id AND status = :expected
        RETURNING id
    )
    INSERT INTO event_steps (event_id, step, outcome, duration_ms, detail)
    SELECT id, :step, 'processed', :duration_ms, CAST(:detail AS jsonb) FROM moved
    RETURNING event_id
    """
)


def source_context(rt: Runtime, event: StoredEvent) -> tuple[SourceContext, SourceProvider]:
    source = rt.config.sources.get(event.source)
    provider = source_provider(source.provider) if source else None
    if source is None or provider is None:
        raise ConfigurationError(
            f"source {event.source!r} is no longer in the config", reason="unknown_source"
        )
    return SourceContext(source=source, http=rt.http, redis=rt.redis, now=rt.clock()), provider


def parse_stored(provider: SourceProvider, event: StoredEvent) -> Any:
    try:
        return provider.parse(event.body)
    except BadPayload as exc:
        raise PermanentError(exc.message, reason=exc.code, failure_class="contract") from exc


def verify_event(rt: Runtime, event_id: int) -> str:
    """Moves a `received` event to `verified` (or waiting/ignored/quarantined); returns the outcome."""
    started = time.perf_counter()
    with rt.autocommit.connect() as connection:
        event = load_event(connection, event_id)
    if event is None or event.status != EventStatus.RECEIVED:
        return "not_pending"
    ctx, provider = source_context(rt, event)
    payload = parse_stored(provider, event)
    report = _contract_report(provider, event, payload, ctx.source.contract_version)
    rejects_unknown = ctx.source.on_unknown_fields == "reject"
    verdict = None
    if not report.broken and not (report.unknown and rejects_unknown):
        verdict = provider.verify(ctx, event, payload)
    drifted = bool(report.missing or report.invalid or report.unknown)
    quarantine = report.broken or (report.unknown and rejects_unknown)
    if not fetches(provider) and not drifted and verdict is None:
        # nothing to fetch (the payload is the whole event): verified and processed in one
        # transaction, saving a broker hop and a round of reads
        result = provider.canonicalize(ctx, event, payload, None)
        return _settle(rt, event, result, None, started, expected=EventStatus.RECEIVED)
    # the common case is one statement: no transaction round trips around it
    with rt.engine.begin() if drifted or verdict else rt.autocommit.connect() as connection:
        if drifted:
            record_drift(connection, event.source, event.provider_type, event.id, report)
        if quarantine:
            return quarantine_event(connection, event, payload, report)
        if verdict is not None:
            return _apply_verdict(connection, event.id, verdict, "verify", started)
        detail = {"unknown_fields": report.unknown[:20]} if report.unknown else None
        if not move(
            connection,
            event.id,
            expected=EventStatus.RECEIVED,
            to=EventStatus.VERIFIED,
            step="verify",
            duration_ms=_ms(started),
            detail=detail,
        ):
            return "not_pending"
    rt.publisher.publish(dispatch.FETCH, [event.id], event.lane)
    return EventStatus.VERIFIED


def _step(expected: str) -> str:
    """The step that settles an event: `fetch`, or `verify` when a payload needed no fetch."""
    return "verify" if expected == EventStatus.RECEIVED else "fetch"


def fetches(provider: SourceProvider) -> bool:
    return type(provider).fetch is not SourceProvider.fetch


def fetch_event(rt: Runtime, event_id: int) -> str:
    """Moves a `verified` event to `processed`, planning its deliveries; returns the outcome."""
    started = time.perf_counter()
    with rt.autocommit.connect() as connection:
        event = load_event(connection, event_id)
    if event is None or event.status != EventStatus.VERIFIED:
        return "not_pending"
    ctx, provider = source_context(rt, event)
    payload = parse_stored(provider, event)
    fetched = provider.fetch(ctx, event, payload)
    result = provider.canonicalize(ctx, event, payload, fetched)
    return _settle(rt, event, result, fetched, started, expected=EventStatus.VERIFIED)


def _settle(
    rt: Runtime,
    event: StoredEvent,
    result: dict[str, Any] | Verdict,
    fetched: Fetched | None,
    started: float,
    *,
    expected: str,
) -> str:
    """One transaction: the ordering guard, then a verdict, or the canonical event, the contact
    and the deliveries; published after it commits."""
    with rt.engine.begin() as connection:
        if fetched is not None and not _newest_state(connection, event, fetched):
            result = Verdict("ignore", "superseded_by_newer_state")
        if isinstance(result, Verdict):
            return _apply_verdict(
                connection, event.id, result, _step(expected), started, expected=expected
            )
        planned = _process(
            connection,
            rt=rt,
            event=event,
            document=result,
            fetched=fetched,
            started=started,
            expected=expected,
        )
    if planned is None:
        return "not_pending"
    publish_deliveries(rt, planned)
    return EventStatus.PROCESSED


def retry_step_later(
    rt: Runtime, event_id: int, exc: RetryableError, step: str, attempt: int
) -> float | None:
    """Seconds until verify/fetch is tried again, or None once the lane's window (counted from
    receipt) is spent and the event has been dead-lettered."""
    with rt.engine.connect() as connection:
        event = load_event(connection, event_id)
    if event is None:
        return None
    delay = min(next_delay(attempt, exc.retry_after), MAX_COUNTDOWN)
    with rt.engine.begin() as connection:
        started: datetime = connection.execute(WINDOW_START, {"id": event_id}).scalar_one()
        if within_window(
            rt.clock() - started.timestamp(), delay, rt.config.lanes[event.lane].attempt_window
        ):
            # the retry is queued: the sweeper must not start a second chain meanwhile
            connection.execute(DISPATCHED_UNTIL, {"id": event_id, "delay": delay})
            return delay
    exc.reason = "attempt_window_exhausted"
    exc.failure_class = "source_unavailable"
    fail_event(rt, event_id, exc, step)
    return None


def _process(
    connection: Connection,
    *,
    rt: Runtime,
    event: StoredEvent,
    document: dict[str, Any],
    fetched: Fetched | None,
    started: float,
    expected: str,
) -> list[tuple[int, str, str]] | None:
    try:
        validate_canonical(document)
    except ValidationError as exc:
        # our mapping built something outside the canonical contract: a bug of ours
        raise PermanentError(
            f"canonical event invalid: {exc.messages}",
            reason="bad_canonical",
            failure_class="internal",
        ) from exc
    resolve_contact(connection, document.get("contact"))
    detail = {"canonical_type": document["type"], "key": document["key"]}
    if fetched is not None:
        detail["object_key"] = fetched.object_key
    moved = connection.execute(
        PROCESS_EVENT,
        {
            "id": event.id,
            "type": document["type"],
            "canonical": _dumps(document),
            "fetched": _dumps(fetched.object) if fetched else None,
            "object_key": fetched.object_key if fetched else None,
            "duration_ms": _ms(started),
            "detail": _dumps(detail),
            "expected": expected,
            "step": _step(expected),
        },
    ).first()
    if moved is None:
        return None
    return plan_deliveries(connection, rt.config, event, document)


def _contract_report(
    provider: SourceProvider, event: StoredEvent, payload: Any, pinned: int | None
) -> ContractReport:
    schema = provider.versioned_contract(event.provider_type, payload, pinned)
    return check(schema, payload) if schema is not None else ContractReport()


def _apply_verdict(
    connection: Connection,
    event_id: int,
    verdict: Verdict,
    step: str,
    started: float,
    *,
    expected: str = EventStatus.RECEIVED,
) -> str:
    status = VERDICT_STATUS[verdict.outcome]
    moved = move(
        connection,
        event_id,
        expected=expected,
        to=status,
        step=step,
        reason=verdict.reason,
        duration_ms=_ms(started),
    )
    return status if moved else "not_pending"


def _newest_state(connection: Connection, event: StoredEvent, fetched: Fetched) -> bool:
    """The ordering guard: False when a newer state of this object was already processed."""
    row = connection.execute(
        CLAIM_OBJECT_VERSION,
        {"key": fetched.object_key, "version": fetched.version, "event_id": event.id},
    ).first()
    return row is not None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)
