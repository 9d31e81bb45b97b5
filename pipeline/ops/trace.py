"""An event's whole story as one document: the request, every step, the fetched object, the
canonical event, every delivery with every attempt, dead letters, replays and audit rows.

E-mail addresses are masked (`j***@example.com`) and every text that came from outside goes
through `redact`, so a trace can be pasted into a ticket. The raw body is not in it: it is
behind `GET /api/events/{id}/raw`, which needs the `admin` scope.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sqlalchemy import Connection, text

from pipeline.logging import redact

# header values that authenticate a request: shown as a digest prefix, enough to compare two
_SECRET_HEADER = re.compile(r"sig|auth|token|key|secret|hmac", re.IGNORECASE)
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+\.[A-Za-z]{2,})")

EVENT = text(
    """
    SELECT id, source, provider, external_id, provider_type, canonical_type, status, reason,
           lane, origin, trace_id, received_at, updated_at, redeliveries, conflicts,
           last_redelivery_at, replays, headers, secret_index, length(body) AS body_bytes,
           encode(body_sha256, 'hex') AS body_sha256, object_key, canonical
    FROM events WHERE id = :id
    """
)
STEPS = text(
    "SELECT step, outcome, at, duration_ms, detail FROM event_steps "
    "WHERE event_id = :id ORDER BY at, id"
)
VERSION = text("SELECT version FROM object_versions WHERE object_key = :key")
DELIVERIES = text(
    """
    SELECT id, action, destination, lane, status, idempotency_key, attempts, created_at,
           updated_at, delivered_at, next_attempt_at, last_error, subject
    FROM deliveries WHERE event_id = :id ORDER BY id
    """
)
ATTEMPTS = text(
    """
    SELECT delivery_id, number, started_at, duration_ms, outcome, http_status, error_class,
           error, worker
    FROM attempts WHERE delivery_id = ANY(:ids) ORDER BY delivery_id, number, id
    """
)
DEAD_LETTERS = text(
    """
    SELECT id, delivery_id, step, failure_class, reason, error, status, created_at, replayed_at,
           replay_count
    FROM dead_letters WHERE event_id = :id ORDER BY id
    """
)
REPLAYS = text(
    """
    SELECT i.plan_id, p.mode, p.status AS plan_status, i.delivery_id, i.dead_letter_id,
           i.status, i.outcome, i.done_at
    FROM replay_items i JOIN replay_plans p ON p.id = i.plan_id
    WHERE i.event_id = :id ORDER BY p.created_at, i.position
    """
)
AUDIT = text(
    """
    SELECT id, at, actor, action, reason, plan_id, target, counts
    FROM audit_log WHERE event_ids @> ARRAY[CAST(:id AS bigint)] ORDER BY id
    """
)


def mask_email(value: str) -> str:
    return _EMAIL.sub(r"\1***\2", value)


def masked(value: Any) -> Any:
    """Any JSON value with every e-mail address masked and every string redacted."""
    if isinstance(value, str):
        return mask_email(redact(value)) if "@" in value else redact(value)
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def shown_headers(headers: dict[str, Any]) -> dict[str, str]:
    shown = {}
    for name, value in (headers or {}).items():
        if _SECRET_HEADER.search(name):
            digest = hashlib.sha256(str(value).encode()).hexdigest()[:12]
            shown[name] = f"[sha256:{digest}]"
        else:
            shown[name] = redact(str(value))[:300]
    return shown


def event_trace(connection: Connection, event_id: int) -> dict[str, Any] | None:
    row = connection.execute(EVENT, {"id": event_id}).mappings().first()
    if row is None:
        return None
    version = (
        connection.execute(VERSION, {"key": row["object_key"]}).scalar()
        if row["object_key"]
        else None
    )
    deliveries = [dict(d) for d in connection.execute(DELIVERIES, {"id": event_id}).mappings()]
    attempts = connection.execute(ATTEMPTS, {"ids": [d["id"] for d in deliveries]}).mappings()
    by_delivery: dict[int, list[dict[str, Any]]] = {}
    for attempt in attempts:
        entry = dict(attempt)
        entry["error"] = redact(entry["error"]) if entry["error"] else None
        by_delivery.setdefault(entry.pop("delivery_id"), []).append(entry)
    for delivery in deliveries:
        delivery["last_error"] = masked(delivery["last_error"])
        delivery["attempt_log"] = by_delivery.get(delivery["id"], [])
    return {
        "event": _event_part(row),
        "request": {
            "origin": row["origin"] or "webhook",
            "headers": shown_headers(row["headers"]),
            "secret_matched": (
                None if row["secret_index"] is None else f"signing_secrets[{row['secret_index']}]"
            ),
            "body_bytes": row["body_bytes"],
            "body_sha256": row["body_sha256"],
        },
        "steps": [
            {**dict(step), "detail": masked(step["detail"])}
            for step in connection.execute(STEPS, {"id": event_id}).mappings()
        ],
        "fetched": {"object_key": row["object_key"], "version": version},
        "canonical": masked(row["canonical"]),
        "deliveries": deliveries,
        "dead_letters": [
            {**dict(d), "error": masked(d["error"])}
            for d in connection.execute(DEAD_LETTERS, {"id": event_id}).mappings()
        ],
        "replays": [dict(r) for r in connection.execute(REPLAYS, {"id": event_id}).mappings()],
        "audit": [dict(a) for a in connection.execute(AUDIT, {"id": event_id}).mappings()],
    }


def _event_part(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source": row["source"],
        "provider": row["provider"],
        "provider_event_id": row["external_id"],
        "provider_type": row["provider_type"],
        "canonical_type": row["canonical_type"],
        "status": row["status"],
        "reason": row["reason"],
        "lane": row["lane"],
        "trace_id": row["trace_id"],
        "received_at": row["received_at"],
        "updated_at": row["updated_at"],
        "redeliveries": row["redeliveries"],
        "conflicts": row["conflicts"],
        "last_redelivery_at": row["last_redelivery_at"],
        "replays": row["replays"],
    }


def raw_body(connection: Connection, event_id: int) -> tuple[bytes, str] | None:
    """The body as received, and the content type it came with."""
    row = connection.execute(
        text("SELECT body, headers FROM events WHERE id = :id"), {"id": event_id}
    ).first()
    if row is None:
        return None
    headers = {k.lower(): v for k, v in (row.headers or {}).items()}
    return bytes(row.body), str(headers.get("content-type") or "application/octet-stream")
