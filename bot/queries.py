"""One way to turn "entity + period" text into what the engine computes with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine

from kpi_engine.figures import Figures
from kpi_engine.history import history_of
from kpi_engine.organisation import Organisation
from kpi_engine.periods import Period, PeriodError, earlier_period, parse_period
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans


@dataclass(frozen=True)
class FigureQuery:
    """A resolved question: whose figures, over which period (in their zone), as of when."""

    figures: Figures
    scope: Scope
    period: Period
    now: int

    @cached_property
    def plans(self) -> Plans:
        """The targets the period is judged by: a closed month keeps its own
        (kpi_engine.history), read from the database only when asked for."""
        history = history_of(self.figures.engine, self.figures.organisation, now=self.now)
        return history.in_force(self.period, self.now).plans

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


# The moment a question is asked, given the time zone it is about (a `--now` written as a
# local time is read on that clock).
MomentOf = Callable[[str], int]


def resolve(
    engine: Engine, organisation: Organisation, entity: str, period: str, *, now: MomentOf | int
) -> FigureQuery:
    """Resolve `entity` and `period` at `now` (an instant, or the moment for the scope's time
    zone); raises ScopeError or PeriodError with a clear message."""
    figures = Figures(engine, organisation)
    scope = figures.scope_of(entity)
    at = now if isinstance(now, int) else now(figures.timezone(scope))
    chosen = parse_period(
        period,
        now=at,
        timezone=figures.timezone(scope),
        week_start=organisation.settings.week_start,
    )
    return FigureQuery(figures, scope, chosen, at)
