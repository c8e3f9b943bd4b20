"""Progress against targets: achievement, expected-by-now, pace and projection.

Additive metrics (money, counts) have their targets split into daily targets by the weights of
the plan in force on each day; level metrics (ratios such as the refund rate) keep their target
value whatever the period.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from kpi_engine.figures import Figure
from kpi_engine.metrics import Catalogue
from kpi_engine.periods import Period
from kpi_engine.plans import Plan, Target
from kpi_engine.scopes import Scope

ADDITIVE_UNITS = frozenset({"money", "count", "seconds"})


@dataclass(frozen=True)
class Progress:
    """A figure beside its target: achievement, pace and projection to the period's end."""

    figure: Figure
    target: Decimal | None
    achievement: Decimal | None  # actual ÷ target (target ÷ actual when lower is better)
    expected: Decimal | None  # target expected by now (additive metrics)
    pace: Decimal | None  # actual ÷ expected
    projection: Decimal | None  # the period's total if the pace holds
    pilot: bool  # some day of the period is under a pilot plan: shown, not for bonus
    plan: str | None


class Plans:
    """The organisation's plans and targets, answering "what is the target for …"."""

    def __init__(self, plans: Iterable[Plan], targets: Iterable[Target], catalogue: Catalogue):
        self.plans = sorted(plans, key=lambda p: p.effective_from)
        self.targets = list(targets)
        self.catalogue = catalogue

    def plan_on(self, day: date) -> Plan | None:
        """The plan in force on a day (the latest one that has started)."""
        current = None
        for plan in self.plans:
            if plan.effective_from <= day:
                current = plan
        return current

    def daily_targets(self, metric: str, scope: Scope, days: Sequence[date]) -> dict[date, Decimal]:
        """Each day's share of the targets that cover it (additive metrics)."""
        result: dict[date, Decimal] = {}
        for target in self._targets(metric, scope):
            weights = {}
            for day in target.period.dates():
                plan = self.plan_on(day)
                weights[day] = plan.day_weight(day, scope) if plan else Decimal(1)
            total = sum(weights.values(), Decimal(0))
            if total == 0:
                continue
            for day in days:
                if day in weights:
                    result[day] = result.get(day, Decimal(0)) + target.value * weights[day] / total
        return result

    def progress(self, figure: Figure, now: int) -> Progress:
        """The figure against its target for the figure's period."""
        metric = self.catalogue.metrics.get(figure.metric)
        if metric is None:  # a ready-made daily metric: no targets (yet), shown as it is
            return Progress(figure, None, None, None, None, None, False, None)
        period = figure.period
        in_force = {p.id: p for p in map(self.plan_on, period.dates()) if p is not None}
        pilot = any(p.pilot for p in in_force.values())
        latest = max(in_force.values(), key=lambda p: p.effective_from, default=None)
        plan_id = latest.id if latest else None
        actual = figure.value
        if metric.unit not in ADDITIVE_UNITS:
            level = next(
                (
                    t.value
                    for t in self._targets(metric.key, figure.scope)
                    if t.period.first <= period.last and period.first <= t.period.last
                ),
                None,
            )
            return Progress(
                figure,
                level,
                _achievement(actual, level, metric.direction),
                None,
                None,
                None,
                pilot,
                plan_id,
            )
        daily = self.daily_targets(metric.key, figure.scope, period.dates())
        if not daily:
            return Progress(figure, None, None, None, None, None, pilot, plan_id)
        target = self._period_target(metric.key, figure.scope, period, daily)
        expected = Decimal(0)
        for day, value in daily.items():
            plan = self.plan_on(day) or Plan("flat", date.min)
            share = plan.elapsed_of_day(now, day, period.timezone)
            expected += value * Decimal(share.numerator) / Decimal(share.denominator)
        pace = None if actual is None or expected == 0 else actual / expected
        projection = None if pace is None else target * pace
        return Progress(
            figure,
            target,
            _achievement(actual, target, metric.direction),
            expected,
            pace,
            projection,
            pilot,
            plan_id,
        )

    def _period_target(
        self, metric: str, scope: Scope, period: Period, daily: dict[date, Decimal]
    ) -> Decimal:
        """The sum of the daily targets, exact where a target's whole period is covered."""
        days = set(period.dates())
        total, covered = Decimal(0), set()
        for target in self._targets(metric, scope):
            dates = set(target.period.dates())
            if dates <= days:
                total += target.value  # the configured value itself, not a sum of shares
                covered |= dates
        return total + sum((v for d, v in daily.items() if d not in covered), Decimal(0))

    def _targets(self, metric: str, scope: Scope) -> list[Target]:
        return [t for t in self.targets if t.metric == metric and t.scope == scope]


def _achievement(actual: Decimal | None, target: Decimal | None, direction: str) -> Decimal | None:
    if actual is None or target is None:
        return None
    if direction == "lower":
        return None if actual == 0 else target / actual
    return None if target == 0 else actual / target
