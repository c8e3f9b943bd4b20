"""How fresh each data source is: the last import of each, which have gone silent, and each
synced shop's sync state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from kpi_engine.models import ImportBatch, SyncCursor

SOURCES = ("orders", "refunds", "live_sessions", "ad_spend", "metric_values")
_BATCHES = ImportBatch.__table__  # type: ignore[attr-defined]
_CURSORS = SyncCursor.__table__  # type: ignore[attr-defined]


def last_imports(engine: Engine) -> dict[str, int]:
    """Each source's latest import time (epoch seconds); a source never imported is absent."""
    query = (
        select(_BATCHES.c.kind, func.max(_BATCHES.c.imported_at))
        .where(_BATCHES.c.kind.in_(SOURCES))
        .where(_BATCHES.c.rows > 0)  # an import still publishing (SQLite) is not in yet
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


@dataclass(frozen=True)
class SourceFreshness:
    """How fresh one shop's synced source is: `high_water` = everything the platform changed
    before it is in; `last_success` = when a sync last caught up."""

    shop_id: str
    source: str
    last_success: int | None
    high_water: int | None
    rows: int
    errors: int
    last_error: str | None


def shop_freshness(engine: Engine, shop_id: str | None = None) -> list[SourceFreshness]:
    """Per shop and source, the sync state ("数据更新到几点 / how fresh is the data")."""
    query = select(_CURSORS).order_by(_CURSORS.c.shop_id, _CURSORS.c.source)
    if shop_id is not None:
        query = query.where(_CURSORS.c.shop_id == shop_id)
    with engine.connect() as conn:
        return [
            SourceFreshness(
                row.shop_id,
                row.source,
                row.last_success,
                row.high_water,
                row.rows,
                row.errors,
                row.last_error,
            )
            for row in conn.execute(query)
        ]


def last_data(engine: Engine, shop_id: str | None = None) -> dict[str, int]:
    """Each source's latest data time: a shop's last caught-up sync where the shop is synced,
    else (and for the whole company) the source's latest import."""
    found = last_imports(engine)
    if shop_id is not None:
        for entry in shop_freshness(engine, shop_id):
            if entry.last_success is not None:
                found[entry.source] = entry.last_success
    return found
