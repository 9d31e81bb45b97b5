"""fetch: the object's current state from the provider's API (webhooks are pointers), the ordering
guard, the canonical event, the contact, and one delivery row per action the flows ask for; it
commits, then publishes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Connection, text

from pipeline.errors import PermanentError
from pipeline.flow.planning import plan_deliveries
from pipeline.flow.publish import publish_deliveries
from pipeline.flow.steps import (
    apply_verdict,
    elapsed_ms,
    parse_stored,
    settling_step,
    source_context,
    to_json,
)
from pipeline.log.events import StoredEvent, load_event
from pipeline.log.identity import resolve_contact
from pipeline.log.models import EventStatus
from pipeline.logging import bind_event
from pipeline.ops.handles import handle_key, handles_of
from pipeline.providers.base import Fetched, Verdict
from pipeline.runtime import Runtime
from pipeline.storable import strip_nul
from schemas.canonical import validate_canonical

log = logging.getLogger(__name__)

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
# a verdict acts on nothing, so it claims no version; it only asks whether it is stale
NEWER_STATE_PROCESSED = text(
    "SELECT 1 FROM object_versions WHERE object_key = :key AND version > :version"
)
# verified -> processed with the canonical event and the fetched object, and the step, at once
PROCESS_EVENT = text(
    """
    WITH moved AS (
        UPDATE events SET status = 'processed', reason = NULL, updated_at = now(),
            canonical_type = :type, canonical = CAST(:canonical AS jsonb),
            fetched = CAST(:fetched AS json), object_key = :object_key,
            handles = CAST(:handles AS jsonb)
        WHERE id = :id AND status = :expected
        RETURNING id
    )
    INSERT INTO event_steps (event_id, step, outcome, duration_ms, detail)
    SELECT id, :step, 'processed', :duration_ms, CAST(:detail AS jsonb) FROM moved
    RETURNING event_id
    """
)


def fetch_event(rt: Runtime, event_id: int) -> str:
    """Moves a `verified` event to `processed`, planning its deliveries; returns the outcome."""
    started = time.perf_counter()
    with rt.autocommit.connect() as connection:
        event = load_event(connection, event_id)
    if event is not None:
        bind_event(event.id, event.source, event.trace_id)
    if event is None or event.status != EventStatus.VERIFIED:
        return "not_pending"
    ctx, provider = source_context(rt, event)
    payload = parse_stored(provider, event)
    fetched = provider.fetch(ctx, event, payload)
    result = provider.canonicalize(ctx, event, payload, fetched)
    return settle(rt, event, result, fetched, started, expected=EventStatus.VERIFIED)


def settle(
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
    # a fetched object may hold U+0000 (a buyer's name): no text or jsonb column could store it
    result, fetched = strip_nul(result), strip_nul(fetched)
    with rt.engine.begin() as connection:
        acts = not isinstance(result, Verdict)
        if fetched is not None and not _newest_state(connection, event, fetched, claim=acts):
            result = Verdict("ignore", "superseded_by_newer_state")
        if isinstance(result, Verdict):
            return apply_verdict(
                connection, event.id, result, settling_step(expected), started, expected=expected
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
            "canonical": to_json(document),
            "fetched": to_json(fetched.object) if fetched else None,
            "object_key": fetched.object_key if fetched else None,
            "handles": to_json(handles_of(document, handle_key(rt.settings))),
            "duration_ms": elapsed_ms(started),
            "detail": to_json(detail),
            "expected": expected,
            "step": settling_step(expected),
        },
    ).first()
    if moved is None:
        return None
    return plan_deliveries(connection, rt.config, event, document)


def _newest_state(
    connection: Connection, event: StoredEvent, fetched: Fetched, *, claim: bool
) -> bool:
    """The ordering guard: False when a newer state of this object was already processed.

    Only an event that acts (a canonical event) claims the object's version. One that decided
    nothing (a verdict: waiting, ignored) is not a state anyone acted on, so it must not make an
    older event that does act stale: a subscription's `updated` ignored for a metadata change
    must not drop the `created` that starts it.
    """
    params = {"key": fetched.object_key, "version": fetched.version, "event_id": event.id}
    if not claim:
        return connection.execute(NEWER_STATE_PROCESSED, params).first() is None
    return connection.execute(CLAIM_OBJECT_VERSION, params).first() is not None
