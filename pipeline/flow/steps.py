"""What verify and fetch share: the source's context, the stored payload and verdicts."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection

from pipeline.errors import BadPayload, ConfigurationError, PermanentError
from pipeline.log.events import StoredEvent, move
from pipeline.log.models import EventStatus
from pipeline.providers.base import SourceContext, SourceProvider, Verdict
from pipeline.runtime import Runtime
from pipeline.storable import json_text

VERDICT_STATUS = {
    "wait": EventStatus.WAITING,
    "ignore": EventStatus.IGNORED,
    "reject": EventStatus.REJECTED,
}


def source_context(rt: Runtime, event: StoredEvent) -> tuple[SourceContext, SourceProvider]:
    source = rt.config.sources.get(event.source)
    if source is None:
        raise ConfigurationError(
            f"source {event.source!r} is no longer in the config", reason="unknown_source"
        )
    context = SourceContext(source=source, http=rt.http, redis=rt.redis, now=rt.clock())
    return context, source.provider


def parse_stored(provider: SourceProvider, event: StoredEvent) -> Any:
    try:
        return provider.parse(event.body)
    except BadPayload as exc:
        raise PermanentError(exc.message, reason=exc.code, failure_class="contract") from exc


def settling_step(expected: str) -> str:
    """The step that settles an event: `fetch`, or `verify` when a payload needed no fetch."""
    return "verify" if expected == EventStatus.RECEIVED else "fetch"


def apply_verdict(
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
        duration_ms=elapsed_ms(started),
    )
    return status if moved else "not_pending"


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def to_json(value: Any) -> str:
    return json_text(value)
