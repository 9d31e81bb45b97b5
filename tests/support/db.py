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
