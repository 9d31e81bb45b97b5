"""Finding events and dead letters by what an operator knows: an e-mail, a payment id, an id.

Every filter is a bound parameter; the SQL text only ever varies by which fixed conditions are
present. An e-mail or a payment id is matched on `events.handles` through its GIN index, first
(a materialized CTE), so a rare buyer among millions of events is an index lookup, not a scan
of the newest rows. Pages are in id order, newest first, and the cursor is opaque: the last id
seen, base64url-encoded.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from pipeline.errors import BadQuery
from pipeline.ops.handles import email_handle, id_handle

MAX_LIMIT = 200


@dataclass(frozen=True)
class EventQuery:
    email: str | None = None
    payment_id: str | None = None
    provider_event_id: str | None = None
    source: str | None = None
    type: str | None = None  # provider or canonical type; `*` and `?` globs
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: Mapping[str, Any] | None = None  # containment on the canonical event
    event_ids: tuple[int, ...] = ()
    dead_letter_ids: tuple[int, ...] = ()
    # dead letters only
    destination: str | None = None
    failure_class: str | None = None
    limit: int = 50
    cursor: str | None = None

    @classmethod
    def from_filters(cls, values: Mapping[str, Any], **extra: Any) -> EventQuery:
        """From filters named as the admin API names them (absent or None: not filtered)."""
        known = {
            name: values[name]
            for name in (
                "email",
                "payment_id",
                "provider_event_id",
                "source",
                "type",
                "status",
                "since",
                "until",
                "q",
                "destination",
                "failure_class",
                "limit",
                "cursor",
            )
            if values.get(name) is not None
        }
        return cls(**known, **extra)

    def filters(self) -> dict[str, Any]:
        """The filters as JSON, as a replay plan stores them (the e-mail as its handle only)."""
        values = {
            "payment_id": self.payment_id,
            "provider_event_id": self.provider_event_id,
            "source": self.source,
            "type": self.type,
            "status": self.status,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "q": dict(self.q) if self.q else None,
            "event_ids": list(self.event_ids) or None,
            "dead_letter_ids": list(self.dead_letter_ids) or None,
            "destination": self.destination,
            "failure_class": self.failure_class,
            "email": "[hashed]" if self.email else None,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class Page:
    data: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        before = json.loads(base64.urlsafe_b64decode(padded.encode()))["before"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise BadQuery("bad_cursor", "The cursor is not one this API gave out.") from None
    if not isinstance(before, int) or isinstance(before, bool) or not 0 < before < 2**63:
        raise BadQuery("bad_cursor", "The cursor is not one this API gave out.")
    return before


def narrowed(body: str, conditions: list[str]) -> str:
    """`FROM … [WHERE …]` with `conditions` added to its WHERE (or as one)."""
    if not conditions:
        return body
    return body + (" AND " if " WHERE " in body else " WHERE ") + " AND ".join(conditions)


def glob_to_like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


# filter -> the condition it adds over `events e`; each reads the parameter of its own name
FIELD_CONDITIONS = {
    "provider_event_id": "e.external_id = :provider_event_id",
    "source": "e.source = :source",
    "type": "(e.provider_type LIKE :type OR e.canonical_type LIKE :type)",
    "since": "e.received_at >= :since",
    "until": "e.received_at < :until",
    "q": "e.canonical @> CAST(:q AS jsonb)",
    "event_ids": "e.id = ANY(:event_ids)",
}


def event_conditions(query: EventQuery, key: bytes) -> tuple[list[str], list[str], dict[str, Any]]:
    """(handle conditions, other conditions, parameters) over `events e`."""
    handles: list[str] = []
    params: dict[str, Any] = {}
    for index, handle in enumerate(_wanted_handles(query, key)):
        handles.append(f"handles @> CAST(:handle{index} AS jsonb)")
        params[f"handle{index}"] = json.dumps([handle])
    values: dict[str, Any] = {
        "provider_event_id": query.provider_event_id,
        "source": query.source,
        "type": glob_to_like(query.type) if query.type else None,
        "since": query.since,
        "until": query.until,
        "q": json.dumps(query.q) if query.q else None,
        "event_ids": list(query.event_ids) or None,
    }
    where = [FIELD_CONDITIONS[name] for name, value in values.items() if value is not None]
    params.update({name: value for name, value in values.items() if value is not None})
    return handles, where, params


def _wanted_handles(query: EventQuery, key: bytes) -> list[str]:
    wanted = []
    if query.email:
        try:
            wanted.append(email_handle(key, query.email))
        except ValueError:
            raise BadQuery("bad_email", "The e-mail filter is not an e-mail address.") from None
    if query.payment_id:
        wanted.append(id_handle(query.payment_id))
    return wanted


def matched_events_sql(query: EventQuery, key: bytes) -> tuple[str, str, dict[str, Any]]:
    """A `WITH` prefix (empty without handles), the FROM-and-WHERE over `events e`, params."""
    handles, where, params = event_conditions(query, key)
    prefix = ""
    if handles:
        prefix = (
            "WITH by_handle AS MATERIALIZED (SELECT id FROM events WHERE "
            + " AND ".join(handles)
            + ") "
        )
        where.insert(0, "e.id IN (SELECT id FROM by_handle)")
    body = "FROM events e" + (" WHERE " + " AND ".join(where) if where else "")
    return prefix, body, params


EVENT_COLUMNS = """
    e.id, e.source, e.provider, e.external_id AS provider_event_id, e.provider_type,
    e.canonical_type, e.status, e.reason, e.lane, e.origin, e.trace_id, e.received_at,
    e.updated_at, e.redeliveries, e.replays,
    (SELECT coalesce(jsonb_object_agg(s.status, s.n), '{}'::jsonb)
       FROM (SELECT status, count(*) AS n FROM deliveries WHERE event_id = e.id GROUP BY status) s
    ) AS deliveries
"""


def search_events(connection: Connection, query: EventQuery, key: bytes) -> Page:
    prefix, body, params = matched_events_sql(query, key)
    conditions = []
    if query.status:
        conditions.append("e.status = :status")
        params["status"] = query.status
    if query.cursor:
        conditions.append("e.id < :before")
        params["before"] = decode_cursor(query.cursor)
    body = narrowed(body, conditions)
    limit = min(max(query.limit, 1), MAX_LIMIT)
    params["limit"] = limit + 1
    # only fixed fragments are joined into the text; every value is a bound parameter
    sql = f"{prefix}SELECT {EVENT_COLUMNS} {body} ORDER BY e.id DESC LIMIT :limit"
    rows = [dict(row) for row in connection.execute(text(sql), params).mappings()]
    return _page(rows, limit)


DEAD_LETTER_COLUMNS = """
    d.id, d.event_id, d.delivery_id, d.step, d.failure_class, d.reason, d.error, d.status,
    d.created_at, d.replayed_at, d.replay_count, dl.destination, dl.action,
    e.source, e.external_id AS provider_event_id, e.provider_type, e.canonical_type
"""


def dead_letter_sql(query: EventQuery, key: bytes) -> tuple[str, str, dict[str, Any]]:
    """The dead letters matching the event filters plus destination, failure class and their
    own status (open, replayed); joined: `dead_letters d`, `events e`, `deliveries dl`."""
    prefix, body, params = matched_events_sql(query, key)
    body = body.replace(
        "FROM events e",
        "FROM dead_letters d JOIN events e ON e.id = d.event_id "
        "LEFT JOIN deliveries dl ON dl.id = d.delivery_id",
        1,
    )
    conditions = []
    if query.destination:
        conditions.append("dl.destination = :destination")
        params["destination"] = query.destination
    if query.failure_class:
        conditions.append("d.failure_class = :failure_class")
        params["failure_class"] = query.failure_class
    if query.status:
        conditions.append("d.status = :status")
        params["status"] = query.status
    if query.dead_letter_ids:
        conditions.append("d.id = ANY(:dead_letter_ids)")
        params["dead_letter_ids"] = list(query.dead_letter_ids)
    body = narrowed(body, conditions)
    return prefix, body, params


def search_dead_letters(connection: Connection, query: EventQuery, key: bytes) -> Page:
    prefix, body, params = dead_letter_sql(query, key)
    if query.cursor:
        body = narrowed(body, ["d.id < :before"])
        params["before"] = decode_cursor(query.cursor)
    limit = min(max(query.limit, 1), MAX_LIMIT)
    params["limit"] = limit + 1
    sql = f"{prefix}SELECT {DEAD_LETTER_COLUMNS} {body} ORDER BY d.id DESC LIMIT :limit"
    rows = [dict(row) for row in connection.execute(text(sql), params).mappings()]
    return _page(rows, limit)


def _page(rows: list[dict[str, Any]], limit: int) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1]["id"]) if more and rows else None)


def resolve_reference(connection: Connection, reference: str, key: bytes) -> list[int]:
    """The events an operator's reference names: a Stackwire event id, a provider event id,
    an e-mail address or a payment (or any business) id; newest first."""
    found: list[int] = []
    if reference.isdigit():
        found += connection.execute(
            text("SELECT id FROM events WHERE id = :id"), {"id": int(reference)}
        ).scalars()
    found += connection.execute(
        text("SELECT id FROM events WHERE external_id = :ref ORDER BY id DESC LIMIT 20"),
        {"ref": reference},
    ).scalars()
    query = EventQuery(email=reference) if "@" in reference else EventQuery(payment_id=reference)
    if not found:
        found += [row["id"] for row in search_events(connection, query, key).data[:20]]
    return list(dict.fromkeys(found))
