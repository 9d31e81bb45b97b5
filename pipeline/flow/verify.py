"""verify: the payload against its contract (drift recorded, broken contracts quarantined) and any
check beyond the signature (PayPal's postback, payment finality); a payload that needs no fetch is
settled here in the same transaction.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline import keys
from pipeline.delivery.deadletter import quarantine_event
from pipeline.flow.fetch import settle
from pipeline.flow.steps import apply_verdict, elapsed_ms, parse_stored, source_context
from pipeline.log.drift import record_drift
from pipeline.log.events import StoredEvent, load_event, move
from pipeline.log.models import EventStatus
from pipeline.logging import bind_event
from pipeline.providers.base import SourceProvider
from pipeline.runtime import Runtime
from schemas.contracts.base import ContractReport, check


def verify_event(rt: Runtime, event_id: int) -> str:
    """Moves a `received` event to `verified` (or waiting/ignored/quarantined); returns the outcome."""
    started = time.perf_counter()
    with rt.autocommit.connect() as connection:
        event = load_event(connection, event_id)
    if event is not None:
        bind_event(event.id, event.source, event.trace_id)
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
        return settle(rt, event, result, None, started, expected=EventStatus.RECEIVED)
    # the common case is one statement: no transaction round trips around it
    with rt.engine.begin() if drifted or verdict else rt.autocommit.connect() as connection:
        if drifted:
            record_drift(connection, event.source, event.provider_type, event.id, report)
        if quarantine:
            return quarantine_event(connection, event, payload, report)
        if verdict is not None:
            return apply_verdict(connection, event.id, verdict, "verify", started)
        detail = {"unknown_fields": report.unknown[:20]} if report.unknown else None
        if not move(
            connection,
            event.id,
            expected=EventStatus.RECEIVED,
            to=EventStatus.VERIFIED,
            step="verify",
            duration_ms=elapsed_ms(started),
            detail=detail,
        ):
            return "not_pending"
    rt.publisher.publish(keys.FETCH, [event.id], event.lane)
    return EventStatus.VERIFIED


def fetches(provider: SourceProvider) -> bool:
    return type(provider).fetch is not SourceProvider.fetch


def _contract_report(
    provider: SourceProvider, event: StoredEvent, payload: Any, pinned: int | None
) -> ContractReport:
    schema = provider.versioned_contract(event.provider_type, payload, pinned)
    return check(schema, payload) if schema is not None else ContractReport()
