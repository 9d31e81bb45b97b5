"""Recording an accepted webhook: one statement, committed before the receiver answers 2xx.

This is the hot path, so it speaks psycopg directly: one autocommit connection per receiver
process, one prepared statement, the raw body stored as bytes. A redelivery (same source and
provider event id) is counted on the original row in the same statement; the same id with a
different body is counted as a conflict, alerted and dead-lettered with that second body (an
operator may replay it as a new event), never processed. A quarantined body's dead letter is
written by the same statement as its row.
"""

from __future__ import annotations

import hashlib
import logging
import queue
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from pipeline.errors import DatabaseUnavailable, UnstorableEvent, refused_by_database
from pipeline.storable import json_text

log = logging.getLogger(__name__)

# One statement, so nothing can happen in between: the event row, and with it, when it is
# quarantined, its dead letter; when the id is known with another body, the conflict's count,
# alert and dead letter (keeping the second body and its headers, for a replay as a new event).
RECORD_EVENT = """
WITH upserted AS (
    INSERT INTO events (source, provider, external_id, provider_type, lane, status, reason,
                        body, headers, body_sha256, secret_index, origin, trace_id)
    VALUES (%(source)s, %(provider)s, %(external_id)s, %(provider_type)s, %(lane)s, %(status)s,
            %(reason)s, %(body)s, %(headers)s, %(digest)s, %(secret_index)s, %(origin)s,
            %(trace_id)s)
    ON CONFLICT (source, external_id) DO UPDATE SET
        redeliveries = events.redeliveries + (events.body_sha256 = EXCLUDED.body_sha256)::int,
        conflicts = events.conflicts + (events.body_sha256 <> EXCLUDED.body_sha256)::int,
        last_redelivery_at = now()
    RETURNING id, xmax = 0 AS inserted, body_sha256 = %(digest)s AS same_body, lane
),
quarantined AS (
    INSERT INTO dead_letters (event_id, step, failure_class, reason, error, status)
    SELECT id, 'receive', %(failure_class)s, %(reason)s, %(error)s, 'open'
    FROM upserted WHERE inserted AND %(status)s = 'quarantined'
),
conflicted AS (
    SELECT id FROM upserted WHERE NOT inserted AND NOT same_body
),
alert AS (
    INSERT INTO alerts (kind, subject, severity, message)
    SELECT 'event_id_conflict', %(source)s, 'critical', %(conflict_message)s FROM conflicted
    ON CONFLICT (kind, subject) WHERE resolved_at IS NULL
    DO UPDATE SET count = alerts.count + 1, last_at = now()
),
conflict_letter AS (
    INSERT INTO dead_letters (event_id, step, failure_class, reason, error, payload, body, status)
    SELECT id, 'receive', 'contract', 'id_conflict', %(conflict_message)s,
           CAST(%(conflict_payload)s AS jsonb), %(body)s, 'open'
    FROM conflicted
    -- the same second body sent again is one dead letter, not one per resend
    WHERE NOT EXISTS (
        SELECT 1 FROM dead_letters d
        WHERE d.event_id = conflicted.id AND d.reason = 'id_conflict'
          AND sha256(d.body) = %(digest)s
    )
)
SELECT id, inserted, same_body, lane FROM upserted
"""


def _params(event: IncomingEvent, digest: bytes) -> dict[str, Any]:
    status, reason = _initial_status(event)
    quarantine = event.quarantine
    headers = dict(event.headers)
    return {
        "source": event.source,
        "provider": event.provider,
        "external_id": event.external_id,
        "provider_type": event.provider_type,
        "lane": event.lane or "analytics",
        "status": status,
        "reason": reason,
        "body": event.body,
        "headers": json_text(headers),
        "digest": digest,
        "secret_index": event.secret_index,
        "origin": event.origin,
        "trace_id": event.trace_id,
        "failure_class": quarantine.failure_class if quarantine else None,
        "error": quarantine.error if quarantine else None,
        # only used when the id turns out to be known with another body
        "conflict_message": conflict_message(event.source, event.external_id),
        "conflict_payload": json_text({"body_sha256": digest.hex(), "headers": headers}),
    }


def conflict_message(source: str, external_id: str) -> str:
    return (
        f"{source} sent event {external_id} again with a different body (a provider reusing an "
        "id, a leaked secret or a provider bug): not processed; the second body is kept in this "
        "dead letter, replayable as a new event."
    )


def _initial_status(event: IncomingEvent) -> tuple[str, str | None]:
    if event.quarantine:
        return "quarantined", event.quarantine.reason
    return ("received", None) if event.lane else ("ignored", "unmapped_type")


@dataclass(frozen=True)
class Quarantine:
    """Why a signed body is kept aside (`pipeline.flow.identify`), and what its dead letter says."""

    reason: str  # "unidentified" | "unreadable"
    failure_class: str
    error: str


@dataclass(frozen=True)
class Recorded:
    event_id: int
    outcome: str  # "accepted" | "duplicate" | "conflict" | "ignored" | "quarantined"
    lane: str


@dataclass(frozen=True)
class IncomingEvent:
    source: str
    provider: str
    external_id: str
    provider_type: str
    lane: str | None  # None: no flow can use this type; stored and ignored
    body: bytes
    headers: Mapping[str, str]
    secret_index: int | None
    quarantine: Quarantine | None = None  # why a signed event we cannot read is kept aside
    origin: str = "webhook"  # or "backfill": listed from the provider's API by reconciliation
    trace_id: str | None = None


class EventWriter:
    """A few autocommit connections, each used by one request at a time (a psycopg connection
    runs one statement at a time); a broken one is dropped and replaced on the next request."""

    def __init__(self, libpq_url: str, *, keep: int = 16) -> None:
        self._url = libpq_url
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._keep = keep

    def record(self, event: IncomingEvent) -> Recorded:
        digest = hashlib.sha256(event.body).digest()
        event_id, inserted, same_body, lane = self._execute(RECORD_EVENT, _params(event, digest))
        if inserted:
            if event.quarantine:
                return Recorded(event_id, "quarantined", lane)
            return Recorded(event_id, "accepted" if event.lane else "ignored", lane)
        if same_body:
            return Recorded(event_id, "duplicate", lane)
        log.error(
            "event id reused with a different body; kept aside, not processed",
            extra={"source": event.source, "event_id": event_id},
        )
        return Recorded(event_id, "conflict", lane)

    def _execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> tuple[Any, ...]:
        connection = None
        try:
            connection = self._acquire()
            row = connection.execute(sql, params, prepare=True).fetchone()
        except psycopg.Error as exc:
            raise self._failure(connection, exc) from exc
        self._release(connection)
        return row or ()

    def _failure(self, connection: psycopg.Connection | None, exc: psycopg.Error) -> Exception:
        """What a failed statement means for the provider: retry later (503), or never (400)."""
        if refused_by_database(exc):
            # a verdict on this event's data (SQLSTATE 22/54): the connection is fine
            if connection is not None:
                self._release(connection)
            return UnstorableEvent(type(exc).__name__)
        if connection is not None:
            connection.close()  # dead with PostgreSQL, or in doubt: not returned to the idle set
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return DatabaseUnavailable(str(exc))
        return exc

    def _acquire(self) -> psycopg.Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return psycopg.connect(
                self._url, autocommit=True, connect_timeout=3, application_name="stackwire-receiver"
            )

    def _release(self, connection: psycopg.Connection) -> None:
        if self._idle.qsize() < self._keep and not connection.closed:
            self._idle.put(connection)
        else:
            connection.close()

    def ping(self) -> None:
        self._execute("SELECT 1", ())

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
