"""Progress against targets: achievement, expected-by-now, pace and projection.

Each day's target comes from one target (`Plans.governing`): of the plan in force that day, the
entity's own before a role-wide default, a fixed period's before a recurring one. Additive
metrics (sums such as GMV and orders) have their targets split into daily targets by the
weights of the target's plan; level metrics (rates and averages such as the refund rate or
AOV) keep their target value whatever the period.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from kpi_engine.figures import Figure
from kpi_engine.formulas import Binary, Negate, Node, Number, Ref
from kpi_engine.metrics import Catalogue
from kpi_engine.periods import Period, month_of
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
    # 0 on a lower-is-better metric whose target is above 0 (no returns, no complaints): better
    # than any ratio can say, so `achievement` is None and a scorecard gives the item its cap
    beyond: bool = False
    # Too early in the period for a pace: less than EARLY_SHARE of the target is expected yet
    # (just after midnight, the first day of a month), so a few orders would read as 800 %;
    # `pace` and `projection` are None and the surfaces say it is too early.
    early: bool = False


# The share of the period's target that must be expected by now before a pace is stated.
EARLY_SHARE = Decimal("0.03")


@dataclass(frozen=True)
class TargetLine:
    """What one entity's target for one metric is over a period, and where it comes from."""

    metric: str
    scope: Scope
    period: Period
    value: Decimal
    sources: tuple[Target, ...]  # the targets that set some day of the period


# A day's target: the target that governs it, its occurrence's period and value there.
_Governing = tuple[Target, Period, Decimal]


class Plans:
    """The organisation's plans and targets, answering "what is the target for …"."""

    def __init__(self, plans: Iterable[Plan], targets: Iterable[Target], catalogue: Catalogue):
        self.plans = sorted(plans, key=lambda p: p.effective_from)
        self.targets = list(targets)
        self.catalogue = catalogue
        self._by_key: dict[tuple[str, Scope], list[Target]] = {}
        for target in self.targets:
            self._by_key.setdefault((target.metric, target.scope), []).append(target)
        self._by_id = {plan.id: plan for plan in self.plans}
        self._starts = [plan.effective_from for plan in self.plans]
        self._weights: dict[tuple[Period, Scope, str], Decimal] = {}
        self._additive: dict[str, bool] = {}

    def additive(self, metric: str) -> bool:
        """True when a period's value is the sum of its days' (GMV, orders, net GMV): its
        target is spread over days. Others (rates, averages such as AOV or average watch
        time) are levels: their target holds as it is for any period."""
        found = self._additive.get(metric)
        if found is None:
            found = self._additive[metric] = _additive(self.catalogue, metric)
        return found

    def plan_on(self, day: date) -> Plan | None:
        """The plan in force on a day: the latest one whose `effective_from` has come."""
        index = bisect_right(self._starts, day)
        return self.plans[index - 1] if index else None

    def governing(self, metric: str, scope: Scope, day: date) -> _Governing | None:
        """The one target that sets `day`'s target for a metric and entity, if any.

        Only targets of the plan in force that day apply. Of those, the entity's own target
        overrides a role-wide default (a team's over the company's); then a target given for
        a fixed period overrides a recurring one on the days it covers, and of two fixed
        periods the shorter one governs the days they share.
        """
        plan = self.plan_on(day)
        if plan is None:
            return None
        best: _Governing | None = None
        best_rank: tuple[int, bool, int] | None = None
        for target in self._by_key.get((metric, scope), ()):
            if target.plan != plan.id:
                continue
            found = target.occurrence(day)
            if found is None:
                continue
            rank = (target.rank, target.recurrence is not None, found[0].days)
            if best_rank is None or rank <= best_rank:
                best, best_rank = (target, *found), rank
        return best

    def daily_targets(self, metric: str, scope: Scope, days: Sequence[date]) -> dict[date, Decimal]:
        """Each day's share of the target that governs it (additive metrics)."""
        result: dict[date, Decimal] = {}
        for day in days:
            share = self._share(scope, day, self.governing(metric, scope, day))
            if share is not None:
                result[day] = share
        return result

    def target_of(self, metric: str, scope: Scope, period: Period) -> TargetLine | None:
        """The metric's target for an entity over a period (None when no day has one)."""
        found = self.catalogue.metrics.get(metric)
        if found is None:
            return None
        days = period.dates()
        governed = {day: self.governing(metric, scope, day) for day in days}
        sources = tuple(dict.fromkeys(g[0] for g in governed.values() if g is not None))
        if not sources:
            return None
        if self.additive(metric):
            value = self._period_target(scope, governed)
        else:
            value = self._level(governed)
        return TargetLine(metric, scope, period, value, sources)

    def lines(self, month: date) -> list[TargetLine]:
        """Every entity's target for each metric over the month containing `month`, in the
        entity's zone: what applies that month."""
        found = []
        for (metric, scope), targets in self._by_key.items():
            period = month_of(month, targets[0].period.timezone)
            line = self.target_of(metric, scope, period)
            if line is not None:
                found.append(line)
        return found

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
        governed = {day: self.governing(metric.key, figure.scope, day) for day in period.dates()}
        if not self.additive(metric.key):
            level = self._level(governed) if any(governed.values()) else None
            return Progress(
                figure,
                level,
                _achievement(actual, level, metric.direction),
                None,
                None,
                None,
                pilot,
                plan_id,
                _beyond(actual, level, metric.direction),
            )
        daily = {
            day: part
            for day, found in governed.items()
            if (part := self._share(figure.scope, day, found)) is not None
        }
        if not daily:
            return Progress(figure, None, None, None, None, None, pilot, plan_id)
        target = self._period_target(figure.scope, governed)
        expected = Decimal(0)
        for day, value in daily.items():
            plan = self.plan_on(day) or Plan("flat", date.min)
            share = plan.elapsed_of_day(now, day, period.timezone)
            expected += value * Decimal(share.numerator) / Decimal(share.denominator)
        early = expected < target * EARLY_SHARE
        pace = None if actual is None or expected == 0 or early else actual / expected
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
            _beyond(actual, target, metric.direction),
            early,
        )

    def _weight(self, day: date, scope: Scope, plan_id: str) -> Decimal:
        """A day's weight as the target's own plan sees it."""
        plan = self._by_id.get(plan_id)
        return plan.day_weight(day, scope) if plan else Decimal(1)

    def _total_weight(self, occurrence: Period, scope: Scope, plan_id: str) -> Decimal:
        key = (occurrence, scope, plan_id)
        total = self._weights.get(key)
        if total is None:
            days = occurrence.dates()
            total = sum((self._weight(d, scope, plan_id) for d in days), Decimal(0))
            if len(self._weights) > 100_000:  # bounded: a long-lived worker sees many periods
                self._weights.clear()
            self._weights[key] = total
        return total

    def _share(self, scope: Scope, day: date, found: _Governing | None) -> Decimal | None:
        """The day's part of its occurrence's value, in proportion to the day's weight."""
        if found is None:
            return None
        target, occurrence, value = found
        total = self._total_weight(occurrence, scope, target.plan)
        if total == 0:
            return None
        share = value * self._weight(day, scope, target.plan) / total
        return share * self._ramp(target, day) if target.hired else share

    def _ramp(self, target: Target, day: date) -> Decimal:
        plan = self._by_id.get(target.plan)
        return target.ramp_factor(day, plan.ramp_percent) if plan else Decimal(1)

    def _period_target(self, scope: Scope, governed: dict[date, _Governing | None]) -> Decimal:
        """The sum of the daily targets; an occurrence wholly inside counts its value itself."""
        groups: dict[tuple[Target, Period], list[date]] = {}
        for day, found in governed.items():
            if found is not None:
                groups.setdefault((found[0], found[1]), []).append(day)
        total = Decimal(0)
        for (_, occurrence), days in groups.items():
            found = governed[days[0]]
            assert found is not None
            factors = {self._ramp(found[0], d) for d in days}
            if len(days) == occurrence.days and len(factors) == 1:
                # The occurrence's value itself (at one ramp step), not a sum of shares.
                total += found[2] * factors.pop()
            else:
                total += sum((self._share(scope, d, governed[d]) or 0 for d in days), Decimal(0))
        return total

    @staticmethod
    def _level(governed: dict[date, _Governing | None]) -> Decimal:
        """A level target over a period: the value governing most of its days (the later one
        on a tie)."""
        counts: dict[Decimal, tuple[int, date]] = {}
        for day, found in governed.items():
            if found is not None:
                seen, _ = counts.get(found[2], (0, day))
                counts[found[2]] = (seen + 1, day)
        return max(counts, key=lambda value: counts[value])


def _additive(catalogue: Catalogue, key: str) -> bool:
    """A base measure in money, counts or seconds, or a formula that only adds and subtracts
    such metrics (scaled by constants): net GMV is additive, AOV and live GPM are not."""
    metric = catalogue.metrics.get(key)
    if metric is None:
        return False
    if metric.imported is not None:  # only a sum of daily values adds up over days
        return metric.imported.aggregate == "sum" and metric.unit in ADDITIVE_UNITS
    if metric.formula is None:
        return metric.unit in ADDITIVE_UNITS
    return _linear(catalogue, metric.formula.root)


def _linear(catalogue: Catalogue, node: Node) -> bool:
    if isinstance(node, Ref):
        return _additive(catalogue, node.name)
    if isinstance(node, Negate):
        return _linear(catalogue, node.operand)
    if isinstance(node, Binary):
        if node.op in "+-":
            return _linear(catalogue, node.left) and _linear(catalogue, node.right)
        if node.op == "*":
            return (isinstance(node.left, Number) and _linear(catalogue, node.right)) or (
                isinstance(node.right, Number) and _linear(catalogue, node.left)
            )
        return isinstance(node.right, Number) and _linear(catalogue, node.left)
    return False  # a constant alone does not add up over days


def _beyond(actual: Decimal | None, target: Decimal | None, direction: str) -> bool:
    """Zero against a positive target on a lower-is-better metric: target ÷ 0 has no value."""
    return direction == "lower" and actual == 0 and target is not None and target > 0


def _achievement(actual: Decimal | None, target: Decimal | None, direction: str) -> Decimal | None:
    if actual is None or target is None:
        return None
    if direction == "lower":
        return None if actual == 0 else target / actual
    return None if target == 0 else actual / target
