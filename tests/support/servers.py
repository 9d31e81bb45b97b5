"""Real PostgreSQL and Redis for the tests: the machine's own when DATABASE_URL/REDIS_URL are set
(as .ci/run sets them), otherwise embedded ones started for this test session.

Each pytest-xdist worker gets its own database (created from scratch and migrated) and its own
Redis database number, so tests run in parallel without seeing each other.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

from devtools.local.embedded import EmbeddedPostgres, EmbeddedRedis
from pipeline.log.db import migrate
from pipeline.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Servers:
    postgres_url: str  # a server URL; the database part is replaced per worker
    redis_url: str
    embedded: list[EmbeddedPostgres | EmbeddedRedis] = field(default_factory=list)

    @classmethod
    def start(cls) -> Servers:
        database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
        embedded: list[EmbeddedPostgres | EmbeddedRedis] = []
        root = Path(tempfile.mkdtemp(prefix="stackwire-tests-"))
        if not database_url:
            postgres = EmbeddedPostgres(root / "postgres", free_port())
            database_url = postgres.start(root / "postgres.log")
            embedded.append(postgres)
        if not redis_url:
            server = EmbeddedRedis(root / "redis", free_port())
            redis_url = server.start(root / "redis.log")
            embedded.append(server)
        return cls(database_url, redis_url, embedded)

    def stop(self) -> None:
        for server in reversed(self.embedded):
            server.stop()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def with_redis_db(url: str, number: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, ""))


def create_database(server_url: str, worker: str) -> str:
    name = f"stackwire_test_{worker}_{uuid.uuid4().hex[:8]}"
    admin = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin, name)
    migrate(Settings(database_url=url))
    return url


def drop_database(server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate(url: str) -> None:
    """Empties every table of the schema (the migrations' own bookkeeping apart), so a table a
    later migration adds is never left holding a previous test's rows."""
    with psycopg.connect(url, autocommit=True) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
        connection.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def reset_redis(url: str) -> None:
    """Empties our keys and the lane queues; kombu's own bookkeeping keys are left alone."""
    client = redis.Redis.from_url(url)
    try:
        keys = [k for k in client.scan_iter(count=1000) if not k.startswith(b"_kombu.binding")]
        if keys:
            client.delete(*keys)
    finally:
        client.close()
