"""Search over the log: an e-mail among many events is an index lookup (EXPLAIN shows the GIN
index), filters combine, cursors page without gaps, bad cursors are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from pipeline.errors import BadQuery
from pipeline.ops.handles import email_handle
from pipeline.ops.search import EventQuery, matched_events_sql, search_events
from pipeline.runtime import Runtime

KEY = b"k" * 32
EVENTS = 50_000


def seed(runtime: Runtime, count: int) -> None:
    """`count` processed events, each with its own buyer and payment, in one statement."""
    with runtime.engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO events (source, provider, external_id, provider_type, lane, status,
                                    body, headers, body_sha256, canonical_type, canonical, handles)
                SELECT 'stripe', 'stripe', 'evt_' || n, 'checkout.session.completed', 'payments',
                       'processed', '\\x7b7d', '{}', sha256(n::text::bytea), 'purchase.completed',
                       jsonb_build_object('purchase', jsonb_build_object('id', 'cs_' || n)),
                       jsonb_build_array(:prefix || md5(n::text), 'id:pi_' || n)
                FROM generate_series(1, :count) AS n
                """
            ),
            {"count": count, "prefix": "email:"},
        )
        connection.execute(text("ANALYZE events"))


def test_an_email_search_is_answered_by_the_handles_index(runtime: Runtime) -> None:
    seed(runtime, EVENTS)
    prefix, body, params = matched_events_sql(EventQuery(email="jane@example.com"), KEY)
    with runtime.engine.connect() as connection:
        plan: Any = connection.execute(
            text(f"EXPLAIN (FORMAT JSON) {prefix}SELECT e.id {body} ORDER BY e.id DESC LIMIT 51"),
            params,
        ).scalar_one()
    assert "events_handles_idx" in json.dumps(plan)
    assert '"Seq Scan"' not in json.dumps(plan)


def test_filters_combine_and_pages_follow_the_cursor(runtime: Runtime) -> None:
    seed(runtime, 30)
    with runtime.engine.begin() as connection:
        handle = email_handle(KEY, "Jane@Example.com")
        connection.execute(
            text("UPDATE events SET handles = handles || CAST(:h AS jsonb) WHERE id <= 25"),
            {"h": json.dumps([handle])},
        )
        first = search_events(connection, EventQuery(email="jane@example.com", limit=10), KEY)
        assert [e["id"] for e in first.data] == list(range(25, 15, -1))
        assert first.next_cursor is not None
        ids = [e["id"] for e in first.data]
        cursor: str | None = first.next_cursor
        while cursor:
            page = search_events(
                connection, EventQuery(email="jane@example.com", limit=10, cursor=cursor), KEY
            )
            ids += [e["id"] for e in page.data]
            cursor = page.next_cursor
        assert ids == list(range(25, 0, -1))
        narrowed = EventQuery(email="jane@example.com", payment_id="pi_7", type="checkout.*")
        assert [e["id"] for e in search_events(connection, narrowed, KEY).data] == [7]
        contained = EventQuery(q={"purchase": {"id": "cs_29"}})
        assert [e["id"] for e in search_events(connection, contained, KEY).data] == [29]
        assert search_events(connection, EventQuery(type="charge.%"), KEY).data == []


@pytest.mark.parametrize("cursor", ["nope", "eyJiZWZvcmUiOiAiMSJ9", "eyJiZWZvcmUiOiAwfQ"])
def test_a_cursor_this_api_never_gave_is_refused(runtime: Runtime, cursor: str) -> None:
    with runtime.engine.connect() as connection, pytest.raises(BadQuery) as caught:
        search_events(connection, EventQuery(cursor=cursor), KEY)
    assert caught.value.code == "bad_cursor"
