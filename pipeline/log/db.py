"""Database engine, migrations and readiness, built from settings by factories (nothing at import)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import DataRefusedError, refused_by_database
from pipeline.settings import Settings


def create_db_engine(settings: Settings, *, pool_size: int = 5) -> Engine:
    engine = create_engine(
        settings.sqlalchemy_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # no ping before every checkout (a round trip each): a connection that died with a
        # PostgreSQL restart fails once, SQLAlchemy invalidates the pool, the task is retried
        pool_pre_ping=False,
        connect_args={"connect_timeout": 5, "application_name": "stackwire"},
    )
    event.listen(engine, "handle_error", _refused_data_is_permanent)
    return engine


def _refused_data_is_permanent(context: ExceptionContext) -> None:
    """A verdict on the data (SQLSTATE 22/54) becomes a permanent pipeline error here, once for
    every caller: as the OperationalError psycopg files it under, it would be retried as an
    unreachable database, 100 times per task."""
    if refused_by_database(context.original_exception):
        raise DataRefusedError.of(context.original_exception) from None


def alembic_config(settings: Settings) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", "pipeline.log:migrations")
    config.set_main_option("sqlalchemy.url", settings.sqlalchemy_url.replace("%", "%%"))
    return config


def migrate(settings: Settings) -> None:
    """Brings the schema to the newest revision; safe to run on every start."""
    command.upgrade(alembic_config(settings), "head")


def pending_migrations(engine: Engine, settings: Settings) -> str | None:
    """None when the schema is current, otherwise a sentence saying what is missing."""
    head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError:
        return "PostgreSQL does not answer"
    if current != head:
        return f"migrations not applied (database at {current or 'nothing'}, code at {head})"
    return None
