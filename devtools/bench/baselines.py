"""The two endpoints the receiver is measured beside, served by the same gunicorn configuration.

- `empty_app`: answers 200 to anything; the ceiling of gunicorn + WSGI on this machine.
- `minimal_app`: the least a durable webhook endpoint can do, written by hand: check the Stripe
  signature, one INSERT (autocommit, prepared, raw body as bytes, unique on the event id), one
  Redis LPUSH, answer 202. If the full receiver is at or above it, its extra care costs nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
import redis

from pipeline.signatures.timestamped_hmac import timestamped_hmac_hex

Environ = dict[str, Any]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
TABLE = """
CREATE TABLE IF NOT EXISTS bench_minimal (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id text NOT NULL UNIQUE,
    body bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)
"""
INSERT = (
    "INSERT INTO bench_minimal (external_id, body) VALUES (%s, %s) "
    "ON CONFLICT (external_id) DO NOTHING RETURNING id"
)


def create_table(database_url: str) -> None:
    """Once, before the endpoint's workers start (they would race each other creating it)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(TABLE)


def empty_app() -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]

    return app


def minimal_app() -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    secret = os.environ.get("BENCH_SECRET", "whsec_bench_secret")
    state: dict[str, Any] = {}

    def connections() -> tuple[psycopg.Connection, redis.Redis]:
        if "db" not in state:  # after the fork, once per worker process
            state["redis"] = redis.Redis.from_url(os.environ["REDIS_URL"])
            state["db"] = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
        return state["db"], state["redis"]

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        header = environ.get("HTTP_STRIPE_SIGNATURE", "")
        parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
        expected = timestamped_hmac_hex(secret, parts.get("t", ""), body)
        if parts.get("v1") != expected or abs(time.time() - int(parts.get("t", "0"))) > 300:
            start_response("401 Unauthorized", [("Content-Length", "0")])
            return [b""]
        event_id = json.loads(body)["id"]
        database, broker = connections()
        row = database.execute(INSERT, (event_id, body), prepare=True).fetchone()
        if row is not None:
            broker.lpush("bench_minimal", json.dumps({"id": row[0]}))
        answer = json.dumps({"status": "accepted"}).encode()
        start_response(
            "202 Accepted",
            [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))],
        )
        return [answer]

    return app
