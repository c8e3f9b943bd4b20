"""How fresh each data source is: the last import of each, and which have gone silent."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, func, select

from kpi_engine.models import ImportBatch

SOURCES = ("orders", "refunds", "live_sessions", "ad_spend", "metric_values")
_BATCHES = ImportBatch.__table__  # type: ignore[attr-defined]


def last_imports(engine: Engine) -> dict[str, int]:
    """Each source's latest import time (epoch seconds); a source never imported is absent."""
    query = (
        select(_BATCHES.c.kind, func.max(_BATCHES.c.imported_at))
        .where(_BATCHES.c.kind.in_(SOURCES))
        .group_by(_BATCHES.c.kind)
    )
    with engine.connect() as conn:
        return {kind: int(at) for kind, at in conn.execute(query)}


def silent_sources(engine: Engine, max_hours: Mapping[str, int], now: int) -> dict[str, int]:
    """The sources imported before but not for longer than allowed: their last import time."""
    return {
        source: at
        for source, at in last_imports(engine).items()
        if now - at > max_hours[source] * 3600
    }
