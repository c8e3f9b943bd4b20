"""One way to turn "entity + period" text into what the engine computes with."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine

from kpi_engine.figures import Figures
from kpi_engine.organisation import Organisation
from kpi_engine.periods import Period, PeriodError, earlier_period, parse_period
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
        if compare == "previous":
            return earlier_period(self.period, "previous", self.now)
        if compare == "year_ago":
            return earlier_period(self.period, "year_ago", self.now)
        raise PeriodError(f"compare must be previous, year_ago or none, not {compare!r}")

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
