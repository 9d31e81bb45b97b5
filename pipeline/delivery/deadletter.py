"""The dead-letter queue: a durable table of failures a human must see, each replayable.

An entry keeps what is needed to understand and redo the work: the failing step, the failure
class (who must act, see `pipeline.errors`), the original payload, the fetched object, the last
error with its (redacted) trace; the delivery's attempts stay in `attempts`. Replay re-runs the
failed step with the same idempotency key, so replaying twice is as safe as replaying once.
"""

from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, text

from pipeline import keys
from pipeline.delivery.rereceive import RESOLVED, Reopened, replay_received
from pipeline.errors import PipelineError
from pipeline.flow.publish import publish_deliveries
from pipeline.log.alerts import raise_alert
from pipeline.log.events import StoredEvent, add_step, move
from pipeline.log.models import DeliveryStatus, EventStatus
from pipeline.logging import redact
from pipeline.runtime import Runtime
from pipeline.storable import json_text, strip_nul
from schemas.contracts.base import ContractReport

log = logging.getLogger(__name__)

INSERT_DEAD_LETTER = text(
    """
    INSERT INTO dead_letters (event_id, delivery_id, step, failure_class, reason, error, trace,
                              payload, fetched)
    VALUES (:event_id, :delivery_id, :step, :failure_class, :reason, :error, :trace,
            CAST(:payload AS jsonb), CAST(:fetched AS jsonb))
    RETURNING id
    """
)
KILL_DELIVERY = text(
    """
    UPDATE deliveries SET status = 'dead', last_error = :error, updated_at = now(),
        lease_until = NULL, next_attempt_at = NULL
    WHERE id = :id AND status NOT IN ('delivered', 'dead')
    RETURNING event_id, action, destination
    """
)
EVENT_SNAPSHOT = text("SELECT canonical, fetched FROM events WHERE id = :id")


def trace_of(exc: BaseException) -> str:
    return redact("".join(traceback.format_exception(exc))[-4000:])


def quarantine_event(
    connection: Connection, event: StoredEvent, payload: Any, report: ContractReport
) -> str:
    """A payload that broke its contract: kept, dead-lettered as schema drift, alerted, replayable."""
    if not move(
        connection,
        event.id,
        expected=EventStatus.RECEIVED,
        to=EventStatus.QUARANTINED,
        step="verify",
        reason="schema_drift",
        detail={
            "missing": report.missing[:20],
            "invalid": report.invalid[:20],
            "unknown": report.unknown[:20],
        },
    ):
        return "not_pending"
    problems = report.missing + report.invalid + report.unknown
    error = "payload broke its contract: " + ", ".join(problems[:10])
    _insert(
        connection,
        event_id=event.id,
        delivery_id=None,
        step="verify",
        failure_class="contract",
        reason="schema_drift",
        error=error,
        trace=None,
        payload=payload,
        fetched=None,
    )
    return EventStatus.QUARANTINED


def fail_event(rt: Runtime, event_id: int, exc: PipelineError, step: str) -> None:
    """verify or fetch gave up (permanent error, or retries past the window)."""
    message = redact(exc.message)
    with rt.engine.begin() as connection:
        # an inline fetch fails a `verified` event from the verify task: accept either open status
        moved = any(
            move(
                connection,
                event_id,
                expected=status,
                to=EventStatus.FAILED,
                step=step,
                reason=exc.reason,
                detail={"error": message},
            )
            for status in EventStatus.OPEN
        )
        if not moved:
            return
        stored = connection.execute(
            text("SELECT source, body FROM events WHERE id = :id"), {"id": event_id}
        ).one()
        source: str = stored.source
        _insert(
            connection,
            event_id=event_id,
            delivery_id=None,
            step=step,
            failure_class=exc.failure_class,
            reason=exc.reason,
            error=message,
            trace=trace_of(exc),
            payload=_as_json(bytes(stored.body)),
            fetched=None,
        )
        raise_alert(
            connection,
            "dead_letter",
            f"source:{source}:{step}",  # one open alert per source and step, counting its events
            f"An event from {source} failed at {step}: {message}",
            severity="critical",
        )


def dead_letter_delivery(rt: Runtime, delivery_id: int, exc: PipelineError) -> None:
    """The named last step of a delivery: permanent failure, or retries exhausted."""
    with rt.engine.begin() as connection:
        row = connection.execute(
            KILL_DELIVERY, {"id": delivery_id, "error": redact(exc.message)[:500]}
        ).first()
        if row is None:
            return
        event_id, action, destination = row
        snapshot = connection.execute(EVENT_SNAPSHOT, {"id": event_id}).first()
        canonical, fetched = snapshot if snapshot else (None, None)
        _insert(
            connection,
            event_id=event_id,
            delivery_id=delivery_id,
            step=f"deliver:{action}",
            failure_class=exc.failure_class,
            reason=exc.reason,
            error=exc.message,
            trace=trace_of(exc),
            payload=canonical,
            fetched=fetched,
        )
        raise_alert(
            connection,
            "dead_letter",
            f"destination:{destination}",
            f"{action} failed for good ({exc.failure_class}): {redact(exc.message)}",
            severity="critical",
        )
    log.warning(
        "delivery dead-lettered",
        extra={"delivery_id": delivery_id, "action": action, "failure_class": exc.failure_class},
    )


@dataclass(frozen=True)
class ReplayResult:
    dead_letter_id: int
    # "replayed" | "already_delivered" | "not_found" | "not_replayable", and for what the
    # receiver set aside (`rereceive`): "duplicate" | "conflict" | "ignored" | "still_unreadable"
    outcome: str


def replay(rt: Runtime, dead_letter_id: int) -> ReplayResult:
    """Re-runs the failed step: a delivery from `deliver`, an event from `verify`; what the
    receiver set aside is received again (`pipeline.delivery.rereceive`)."""
    with rt.engine.begin() as connection:
        entry = connection.execute(
            text(
                "SELECT event_id, delivery_id, step, reason FROM dead_letters "
                "WHERE id = :id FOR UPDATE"
            ),
            {"id": dead_letter_id},
        ).first()
        if entry is None:
            return ReplayResult(dead_letter_id, "not_found")
        event_id, step = int(entry.event_id), str(entry.step)
        reopened = _reopen(connection, rt, dead_letter_id, entry)
        if reopened.outcome not in RESOLVED:
            return ReplayResult(dead_letter_id, reopened.outcome)
        connection.execute(
            text(
                "UPDATE dead_letters SET status = 'replayed', replayed_at = now(), "
                "replay_count = replay_count + 1 WHERE id = :id"
            ),
            {"id": dead_letter_id},
        )
        add_step(
            connection,
            event_id,
            "replay",
            "requested",
            detail={"dead_letter": dead_letter_id, "step": step, "outcome": reopened.outcome},
        )
    if reopened.publish is not None:
        _publish(rt, *reopened.publish)
    return ReplayResult(dead_letter_id, reopened.outcome)


def _reopen(connection: Connection, rt: Runtime, dead_letter_id: int, entry: Row[Any]) -> Reopened:
    if entry.delivery_id is not None:
        return _reopen_delivery(connection, int(entry.delivery_id))
    if entry.step == "receive":
        return replay_received(connection, rt, dead_letter_id, int(entry.event_id), entry.reason)
    return _reopen_event(connection, int(entry.event_id))


def _publish(rt: Runtime, task: str, item_id: int, lane: str) -> None:
    if task == keys.DELIVER:
        publish_deliveries(rt, [(item_id, lane, _destination_of(rt, item_id))])
    else:
        rt.publisher.publish(task, [item_id], lane)


def _reopen_delivery(connection: Connection, delivery_id: int) -> Reopened:
    row = connection.execute(
        text(
            """
            UPDATE deliveries SET status = 'pending', window_started_at = now(),
                next_attempt_at = NULL, lease_until = NULL, updated_at = now()
            WHERE id = :id AND status = 'dead'
            RETURNING lane
            """
        ),
        {"id": delivery_id},
    ).first()
    if row is None:
        status = connection.execute(
            text("SELECT status FROM deliveries WHERE id = :id"), {"id": delivery_id}
        ).scalar()
        delivered = status == DeliveryStatus.DELIVERED
        return Reopened("already_delivered" if delivered else "not_replayable")
    return Reopened("replayed", (keys.DELIVER, delivery_id, row[0]))


def _reopen_event(connection: Connection, event_id: int) -> Reopened:
    row = connection.execute(
        text(
            """
            UPDATE events SET status = 'received', reason = NULL, replays = replays + 1,
                updated_at = now()
            WHERE id = :id AND status IN ('quarantined', 'failed')
            RETURNING lane
            """
        ),
        {"id": event_id},
    ).first()
    return (
        Reopened("replayed", (keys.VERIFY, event_id, row[0])) if row else Reopened("not_replayable")
    )


def _destination_of(rt: Runtime, delivery_id: int) -> str:
    with rt.engine.connect() as connection:
        destination: str = connection.execute(
            text("SELECT destination FROM deliveries WHERE id = :id"), {"id": delivery_id}
        ).scalar_one()
    return destination


def _insert(connection: Connection, **values: Any) -> int:
    """Nothing in the payload can make this write fail (see `pipeline.storable`): a dead letter
    that cannot be written would leave its event open for the sweeper to republish forever."""
    values["error"] = strip_nul(redact(values["error"])[:2000]) if values["error"] else None
    values["trace"] = strip_nul(values["trace"]) if values["trace"] else None
    values["payload"] = json_text(values["payload"]) if values["payload"] else None
    values["fetched"] = json_text(values["fetched"]) if values["fetched"] else None
    dead_letter_id: int = connection.execute(INSERT_DEAD_LETTER, values).scalar_one()
    return dead_letter_id


def _as_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return {"raw": body.decode("utf-8", "replace")[:4000]}
