"""Recording an accepted webhook: one INSERT, committed before the receiver answers 2xx.

This is the hot path, so it speaks psycopg directly: one autocommit connection per receiver
process, one prepared statement, the raw body stored as bytes. A redelivery (same source and
provider event id) is counted on the original row in the same statement; the same id with a
different body is counted as a conflict, alerted and dead-lettered, never processed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from pipeline.errors import DatabaseUnavailable
from pipeline.storable import json_text

log = logging.getLogger(__name__)

RECORD_EVENT = """
INSERT INTO events (source, provider, external_id, provider_type, lane, status, reason,
                    body, headers, body_sha256, secret_index)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (source, external_id) DO UPDATE SET
    redeliveries = events.redeliveries + (events.body_sha256 = EXCLUDED.body_sha256)::int,
    conflicts = events.conflicts + (events.body_sha256 <> EXCLUDED.body_sha256)::int,
    last_redelivery_at = now()
RETURNING id, xmax = 0, body_sha256, lane
"""

RECORD_CONFLICT = """
WITH alert AS (
    INSERT INTO alerts (kind, subject, severity, message)
    VALUES ('event_id_conflict', %(subject)s, 'critical', %(message)s)
    ON CONFLICT (kind, subject) WHERE resolved_at IS NULL
    DO UPDATE SET count = alerts.count + 1, last_at = now()
)
INSERT INTO dead_letters (event_id, step, failure_class, reason, error, payload, status)
VALUES (%(event_id)s, 'receive', 'contract', 'id_conflict', %(message)s, %(payload)s, 'open')
"""


RECORD_QUARANTINE = """
INSERT INTO dead_letters (event_id, step, failure_class, reason, error, status)
VALUES (%(event_id)s, 'receive', 'internal', %(reason)s,
        'a signed event could not be read by its provider module; kept for replay', 'open')
"""


def _initial_status(event: IncomingEvent) -> tuple[str, str | None]:
    if event.quarantine:
        return "quarantined", event.quarantine
    return ("received", None) if event.lane else ("ignored", "unmapped_type")


@dataclass(frozen=True)
class Recorded:
    event_id: int
    outcome: str  # "accepted" | "duplicate" | "conflict" | "ignored"
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
    quarantine: str | None = None  # why a signed event we cannot read is kept aside


class EventWriter:
    """A few autocommit connections, each used by one request at a time (a psycopg connection
    runs one statement at a time); a broken one is dropped and replaced on the next request."""

    def __init__(self, libpq_url: str, *, keep: int = 16) -> None:
        self._url = libpq_url
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._keep = keep

    def record(self, event: IncomingEvent) -> Recorded:
        digest = hashlib.sha256(event.body).digest()
        status, reason = _initial_status(event)
        params = (
            event.source,
            event.provider,
            event.external_id,
            event.provider_type,
            event.lane or "analytics",
            status,
            reason,
            event.body,
            json_text(dict(event.headers)),
            digest,
            event.secret_index,
        )
        row = self._execute(RECORD_EVENT, params)
        event_id, inserted, stored_digest, lane = row
        if inserted:
            if event.quarantine:
                self._execute(
                    RECORD_QUARANTINE,
                    {"event_id": event_id, "reason": event.quarantine},
                    fetch=False,
                )
                return Recorded(event_id, "quarantined", lane)
            return Recorded(event_id, "accepted" if event.lane else "ignored", lane)
        if bytes(stored_digest) == digest:
            return Recorded(event_id, "duplicate", lane)
        self._record_conflict(event, event_id, digest)
        return Recorded(event_id, "conflict", lane)

    def _record_conflict(self, event: IncomingEvent, event_id: int, digest: bytes) -> None:
        log.error(
            "event id reused with a different body; not processed",
            extra={"source": event.source, "event_id": event_id},
        )
        message = (
            f"{event.source} sent event {event.external_id} again with a different body: "
            "a leaked secret or a provider bug; the second copy was not processed."
        )
        payload = {"body_sha256": digest.hex(), "headers": dict(event.headers)}
        self._execute(
            RECORD_CONFLICT,
            {
                "subject": event.source,
                "message": message,
                "event_id": event_id,
                "payload": json.dumps(payload),
            },
            fetch=False,
        )

    def _execute(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any], *, fetch: bool = True
    ) -> tuple[Any, ...]:
        connection = None
        try:
            connection = self._acquire()
            cursor = connection.execute(sql, params, prepare=True)
            row = cursor.fetchone() if fetch else ()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if connection is not None:
                connection.close()  # dead with PostgreSQL: not returned to the idle set
            raise DatabaseUnavailable(str(exc)) from exc
        self._release(connection)
        return row or ()

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
