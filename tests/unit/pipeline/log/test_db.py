"""The engine: PostgreSQL's verdicts on the data are permanent errors, not an unreachable server."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text

from pipeline.errors import INFRASTRUCTURE_ERRORS, DataRefusedError
from pipeline.runtime import Runtime


@pytest.mark.parametrize(
    ("statement", "value", "state"),
    [
        # a key past the btree's ~2.7 kB: SQLSTATE 54000, filed by psycopg as an OperationalError
        ("SELECT count(*) FROM events WHERE external_id = :value", secrets.token_hex(2000), None),
        ("SELECT CAST(:value AS jsonb)", '{"name": "\\u0000"}', "22P05"),
        ("SELECT CAST(:value AS text)", "U+0000 \x00 in text", "client-side"),
    ],
    ids=["key_past_the_btree_limit", "nul_in_jsonb", "nul_in_text"],
)
def test_a_refused_value_is_a_permanent_error_and_the_connection_lives_on(
    runtime: Runtime, statement: str, value: str, state: str | None
) -> None:
    with pytest.raises(DataRefusedError) as refused, runtime.engine.begin() as connection:
        connection.execute(text(statement), {"value": value})
        if state is None:  # an equality search on a long value is fine; an index entry is not
            connection.execute(
                text(
                    "INSERT INTO events (source, provider, external_id, provider_type, lane, "
                    "body, headers, body_sha256) VALUES ('s', 'p', :value, 't', 'payments', "
                    "'\\x00', '{}', '\\x00')"
                ),
                {"value": value},
            )
    assert not isinstance(refused.value, INFRASTRUCTURE_ERRORS)
    assert refused.value.failure_class == "contract"
    assert refused.value.reason == "database_refused_data"
    assert f"SQLSTATE {state or '54000'}" in refused.value.message
    with runtime.engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
