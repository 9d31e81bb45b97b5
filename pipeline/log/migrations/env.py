"""Alembic environment: migrations run online against the URL `pipeline.db.alembic_config` sets."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from pipeline.log.models import Base

config = context.config


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            # two processes starting at once must not both create the tables
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
            context.run_migrations()
    engine.dispose()


run_migrations_online()
