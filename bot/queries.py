"""One way to turn "entity + period" text into what the engine computes with."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from kpi_engine.figures import Figures
from kpi_engine.organisation import Organisation
from kpi_engine.periods import Period, PeriodError, parse_period, today
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans


@dataclass(frozen=True)
class FigureQuery:
    """A resolved question: whose figures, over which period (in their zone), as of when."""

    figures: Figures
    plans: Plans
    scope: Scope
    period: Period
    now: int

    def earlier(self, compare: str) -> Period | None:
        """The period to compare with: "previous", "year_ago" or "none"."""
        if compare == "none":
            return None
        if compare not in ("previous", "year_ago"):
            raise PeriodError(f"compare must be previous, year_ago or none, not {compare!r}")
        earlier = self.period.previous() if compare == "previous" else self.period.year_ago()
        # A week or month still under way is compared with as many days of the earlier one
        # (month-to-date against last month's same days), not with all of it.
        current = today(self.now, self.period.timezone)
        if self.period.kind != "day" and self.period.contains(current):
            elapsed = (current - self.period.first).days
            last = min(earlier.first + timedelta(days=elapsed), earlier.last)
            return Period("custom", earlier.first, last, earlier.timezone)
        return earlier

    @property
    def currency(self) -> str:
        """The scope's reporting currency."""
        return self.figures.reporting_currency(self.scope)


def resolve(
    engine: Engine, organisation: Organisation, entity: str, period: str, now: int | None = None
) -> FigureQuery:
    """Resolve `entity` and `period`; raises ScopeError or PeriodError with a clear message."""
    figures = Figures(engine, organisation)
    scope = figures.scope_of(entity)
    at = int(time.time()) if now is None else now
    chosen = parse_period(
        period,
        now=at,
        timezone=figures.timezone(scope),
        week_start=organisation.settings.week_start,
    )
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    return FigureQuery(figures, plans, scope, chosen, at)
