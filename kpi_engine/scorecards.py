"""Role scorecards and bonus: weighted achievements, caps and floors, tiers, commission, gates.

A scorecard item scores `weight × achievement`, the achievement clamped between the item's
floor and cap (achievement already inverts "lower is better" metrics: target ÷ actual). A
full score is 100 when every target is met exactly. Bonus: the highest tier the score
reaches, plus a commission on a metric above a threshold, unless a gate fails (for example a
refund rate above its limit). A pilot plan's scorecard is shown but its bonus is not payable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the organisation config builds rules; keep this module import-light
    from kpi_engine.targets import Progress

MAX_ITEMS_BEFORE_WARNING = 10  # the brief's pitfall: too many KPIs dilute attention


@dataclass(frozen=True)
class ScoreItem:
    """One weighted metric of a role's scorecard."""

    metric: str
    weight: Decimal
    cap: Decimal = Decimal("1.2")
    floor: Decimal = Decimal(0)


@dataclass(frozen=True)
class Tier:
    """A bonus paid when the score reaches `min_score`."""

    min_score: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Commission:
    """`percent` % of a money metric above `above`."""

    metric: str
    above: Decimal
    percent: Decimal


@dataclass(frozen=True)
class Gate:
    """No bonus unless the metric stays within [min, max]."""

    metric: str
    min: Decimal | None = None
    max: Decimal | None = None

    def passes(self, value: Decimal | None) -> bool:
        """True when the value is known and inside the bounds."""
        if value is None:
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True)
class ScorecardRule:
    """A role's scorecard: items whose weights sum to 100, and bonus rules."""

    role: str
    items: tuple[ScoreItem, ...]
    tiers: tuple[Tier, ...] = ()
    commission: Commission | None = None
    gates: tuple[Gate, ...] = ()

    @property
    def metrics(self) -> set[str]:
        """Every metric the scorecard needs."""
        needed = {item.metric for item in self.items} | {gate.metric for gate in self.gates}
        return needed | ({self.commission.metric} if self.commission else set())


@dataclass(frozen=True)
class ItemScore:
    """How one item scored."""

    item: ScoreItem
    progress: Progress | None
    achievement: Decimal | None  # clamped
    points: Decimal | None


@dataclass(frozen=True)
class Scorecard:
    """A person's score for a period, its breakdown and the bonus it earns."""

    role: str
    items: tuple[ItemScore, ...]
    score: Decimal | None  # None while an item has no value or target
    tier_bonus: Decimal
    commission: Decimal
    failed_gates: tuple[Gate, ...]
    pilot: bool
    provisional: bool

    @property
    def bonus(self) -> Decimal:
        """The bonus earned (0 when a gate fails or a pilot plan is in force)."""
        if self.failed_gates or self.pilot or self.score is None:
            return Decimal(0)
        return self.tier_bonus + self.commission


def score(rule: ScorecardRule, progress: Mapping[str, Progress]) -> Scorecard:
    """Score `rule` against the progress of each of its metrics."""
    items: list[ItemScore] = []
    for item in rule.items:
        row = progress.get(item.metric)
        achievement = row.achievement if row else None
        if achievement is None:
            items.append(ItemScore(item, row, None, None))
            continue
        clamped = min(max(achievement, item.floor), item.cap)
        items.append(ItemScore(item, row, clamped, item.weight * clamped))
    points = [i.points for i in items]
    total = None if any(p is None for p in points) else sum((p for p in points if p), Decimal(0))
    tier_bonus = Decimal(0)
    if total is not None:
        reached = [tier for tier in rule.tiers if total >= tier.min_score]
        tier_bonus = max((tier.amount for tier in reached), default=Decimal(0))
    commission = Decimal(0)
    if rule.commission is not None:
        row = progress.get(rule.commission.metric)
        value = row.figure.value if row else None
        if value is not None and value > rule.commission.above:
            commission = (value - rule.commission.above) * rule.commission.percent / 100
    failed = tuple(
        gate
        for gate in rule.gates
        if not gate.passes(progress[gate.metric].figure.value if gate.metric in progress else None)
    )
    rows = list(progress.values())
    return Scorecard(
        role=rule.role,
        items=tuple(items),
        score=total,
        tier_bonus=tier_bonus,
        commission=commission,
        failed_gates=failed,
        pilot=any(row.pilot for row in rows),
        provisional=any(row.figure.provisional for row in rows),
    )
