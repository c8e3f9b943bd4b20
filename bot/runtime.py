"""The composition root's state: settings, clock, database engine and organisation, built once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from config.settings import Settings
from kpi_engine.clock import Clock, fixed_clock, parse_now, shifted_clock, system_clock
from kpi_engine.db import ensure_schema, make_engine
from kpi_engine.organisation import Organisation, load_organisation


@dataclass(frozen=True)
class Runtime:
    """What every entry point (HTTP app, CLI command, console chat) works with."""

    settings: Settings
    engine: Engine
    organisation: Organisation
    clock: Clock = system_clock


def company_zone(organisation: Organisation) -> str:
    """The zone of company-wide figures and of moments given without one: the first team's."""
    return next(iter(organisation.teams.values())).timezone


def clock_of(
    settings: Settings, organisation: Organisation, *, now: str | None = None, running: bool
) -> Clock:
    """The clock for this process: `now` (a `--now` option) or `KPIBOT_NOW` pins it — fixed
    for a one-shot command, starting there and running on for a server — else the system's.

    Raises InstantError when the moment cannot be read.
    """
    moment = now or settings.now
    if moment is None:
        return system_clock
    start = parse_now(moment, company_zone(organisation))
    return shifted_clock(start) if running else fixed_clock(start)


def build_runtime(
    settings: Settings, *, migrate: bool | None = None, clock: Clock | None = None
) -> Runtime:
    """Load and check the organisation, then open (and, if configured, migrate) the database.

    The clock is `clock` when given, else the settings' (a running one: this is a server's
    runtime unless the caller pins it). Raises ConfigError when the organisation
    configuration has errors.
    """
    organisation = load_organisation(settings.config_dir, settings.cache_dir)
    if settings.auto_migrate if migrate is None else migrate:
        ensure_schema(settings.database_url)
    chosen = clock or clock_of(settings, organisation, running=True)
    return Runtime(settings, make_engine(settings.database_url), organisation, chosen)
