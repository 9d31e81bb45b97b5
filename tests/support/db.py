"""Reading the event log back in tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(text(sql), params).mappings()]


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


def counts(engine: Engine, sql: str, **params: Any) -> dict[Any, int]:
    """{key: count} from a query returning (key, count) pairs."""
    with engine.connect() as connection:
        return {row[0]: row[1] for row in connection.execute(text(sql), params)}


def insert_event(engine: Engine, *, external_id: str = "evt_1", lane: str = "enrollments") -> int:
    """A processed Stripe event row, for tests that need deliveries hung off one."""
    with engine.begin() as connection:
        event_id: int = connection.execute(
            text(
                "INSERT INTO events (source, provider, external_id, provider_type, lane, status,"
                " body, headers, body_sha256, canonical)"
                " VALUES ('stripe', 'stripe', :id, 'checkout.session.completed', :lane,"
                " 'processed', '{}', '{}', '\\x00', CAST(:canonical AS jsonb)) RETURNING id"
            ),
            {"id": external_id, "lane": lane, "canonical": '{"type": "purchase.completed"}'},
        ).scalar_one()
    return event_id


def insert_delivery(
    engine: Engine, event_id: int, *, status: str, age_seconds: float = 0.0, key: str = "sw_1"
) -> int:
    with engine.begin() as connection:
        delivery_id: int = connection.execute(
            text(
                "INSERT INTO deliveries (event_id, action, destination, lane, idempotency_key,"
                " status, created_at) VALUES (:event, 'courses.enroll', 'courses', 'enrollments',"
                " :key, :status, now() - make_interval(secs => :age)) RETURNING id"
            ),
            {"event": event_id, "key": key, "status": status, "age": age_seconds},
        ).scalar_one()
    return delivery_id
