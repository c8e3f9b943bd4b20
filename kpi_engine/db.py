"""Database engines and schema migrations (Alembic), for SQLite and PostgreSQL alike."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration's revision id; a test checks it against the migrations directory.
SCHEMA_HEAD = "0021"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Dates go to SQLite as ISO text (the form SQLAlchemy's Date reads back), also when the
        # importer writes through the driver directly; Python 3.12 deprecates the default.
        sqlite3.register_adapter(date, date.isoformat)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Reads through a memory map and a 64 MB page cache: rollup refreshes and raw
            # figures read big index ranges, which otherwise cost a system call per page.
            cursor.execute("PRAGMA mmap_size=17179869184")
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.close()

        return engine
    # No JIT compilation: a rollup statement or a month's read is estimated costly enough to
    # be compiled, which then takes 0.1–0.4 s — longer than running it (a full rollup build
    # spent a third of its time compiling). A URL that sets its own `options` keeps them.
    connect_args = {} if "options" in parsed.query else {"options": "-c jit=off"}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at our migrations and at `url`, with no ini file."""
    from alembic.config import Config  # alembic is imported only when migrating: CLI start-up

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at `url` up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def ensure_schema(url: str) -> None:
    """Upgrade the schema at `url` unless it is already at SCHEMA_HEAD (a cheap check)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if inspect(connection).has_table("alembic_version"):
                version = connection.execute(text("SELECT version_num FROM alembic_version"))
                if version.scalar() == SCHEMA_HEAD:
                    return
    finally:
        engine.dispose()
    upgrade(url)


def current_revision(url: str) -> str | None:
    """The schema revision the database at `url` is at (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
