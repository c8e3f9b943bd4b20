"""Alembic environment: runs migrations on the URL set by kpi_engine.db.alembic_config."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import kpi_engine.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from kpi_engine.db import make_engine

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    """Run against a live connection (the only mode we use)."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            context.configure(
                connection=conn, target_metadata=target_metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations_online()
