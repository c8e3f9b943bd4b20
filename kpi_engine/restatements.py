"""Restatements: every number the bot posts (digests and chat answers) is remembered, and one
that later moves by more than `restatement_percent` (late refunds, revised orders, an accepted
appeal) is found again so the bot can say so where it was posted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select, update

from kpi_engine.figures import Figure, Figures
from kpi_engine.models import PostedFigure
from kpi_engine.periods import Period
from kpi_engine.scopes import Scope
from kpi_engine.units import writing

_POSTED = PostedFigure.__table__  # type: ignore[attr-defined]
# Posts older than this are history: their numbers are settled and no longer re-checked.
WATCH_DAYS = 14


@dataclass(frozen=True)
class Watched:
    """A posted number to re-check later: a figure of a scope and period, as posted (money in
    `currency` when it was shown converted, else the scope's own)."""

    scope: Scope
    metric: str
    period: Period
    value: Decimal | None
    currency: str | None = None

    @classmethod
    def of(cls, figure: Figure, *, converted: bool = False) -> Watched:
        """The watch for a figure as shown (`converted`: in another currency than its scope's)."""
        return cls(
            figure.scope,
            figure.metric,
            figure.period,
            figure.value,
            figure.currency if converted else None,
        )


def record_posted(engine: Engine, key: str, watched: Iterable[Watched], *, now: int) -> None:
    """Remember the numbers posted in the outbox message `key` (once per message)."""
    rows = [
        {
            "outbox_key": key,
            "scope": w.scope.kind if w.scope.kind == "company" else f"{w.scope.kind}:{w.scope.id}",
            "metric": w.metric,
            "first_day": w.period.first,
            "last_day": w.period.last,
            "timezone": w.period.timezone,
            "value": None if w.value is None else str(w.value),
            "currency": w.currency,
            "posted_at": now,
        }
        for w in dict.fromkeys(watched)
    ]
    if not rows:
        return
    with writing(engine) as conn:
        exists = conn.execute(select(_POSTED.c.id).where(_POSTED.c.outbox_key == key).limit(1))
        if exists.first() is None:
            conn.execute(insert(_POSTED), rows)


def moved(before: Decimal | None, after: Decimal | None, percent: Decimal) -> bool:
    """True when a number moved by more than `percent` of itself (or appeared, or vanished)."""
    if before == after:
        return False
    if before is None or after is None or before == 0:
        return True
    return abs(after - before) * 100 > abs(before) * percent


@dataclass(frozen=True)
class Revision:
    """A posted number that moved: the posted row, what was last said, and the figure now."""

    row: Mapping[Any, Any]
    before: Decimal | None
    figure: Figure


def revisions(figures: Figures, rows: Iterable[Mapping[Any, Any]], *, now: int) -> list[Revision]:
    """The posted numbers (`posted_figures` rows) that moved too far since last said."""
    organisation = figures.organisation
    percent = organisation.settings.restatement_percent
    found = []
    for row in rows:
        kind, _, entity = str(row["scope"]).partition(":")
        known = {"team": organisation.teams, "person": organisation.people}
        known |= {"shop": organisation.shops}
        if kind in known and entity not in known[kind]:
            continue
        if kind != "company" and kind not in known:
            continue
        scope = Scope(kind, entity)  # type: ignore[arg-type]
        single = row["first_day"] == row["last_day"]
        period = Period(
            "day" if single else "custom", row["first_day"], row["last_day"], row["timezone"]
        )
        figure = figures.figure(row["metric"], scope, period, now=now, currency=row["currency"])
        last = row["revised_value"] if row["revised_value"] is not None else row["value"]
        before = None if last is None else Decimal(last)
        if moved(before, figure.value, percent):
            found.append(Revision(row, before, figure))
    return found


def mark_revised(engine: Engine, row_id: int, value: Decimal | None, *, now: int) -> None:
    """Remember what a revision notice said, so the next one compares with it."""
    with engine.begin() as conn:
        conn.execute(
            update(_POSTED)
            .where(_POSTED.c.id == row_id)
            .values(revised_value=None if value is None else str(value), revised_at=now)
        )
