"""The composition root's state: settings, database engine and organisation, built once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from config.settings import Settings
from kpi_engine.db import ensure_schema, make_engine
from kpi_engine.organisation import Organisation, load_organisation


@dataclass(frozen=True)
class Runtime:
    """What every entry point (HTTP app, CLI command) works with."""

    settings: Settings
    engine: Engine
    organisation: Organisation


def build_runtime(settings: Settings, *, migrate: bool | None = None) -> Runtime:
    """Load and check the organisation, then open (and, if configured, migrate) the database.

    Raises ConfigError when the organisation configuration has errors.
    """
    organisation = load_organisation(settings.config_dir)
    if settings.auto_migrate if migrate is None else migrate:
        ensure_schema(settings.database_url)
    return Runtime(settings, make_engine(settings.database_url), organisation)
