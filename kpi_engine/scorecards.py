"""Role scorecards and bonus: weighted achievements, caps and floors, tiers, commission, gates.

A scorecard item scores `weight × achievement`, the achievement clamped between the item's
floor and cap (achievement already inverts "lower is better" metrics: target ÷ actual; an
actual of 0 against a target above 0 is better than any ratio and scores the cap). A full score
is 100 when every target is met exactly. Bonus: the highest tier the score
reaches, plus a commission on a metric above a threshold, unless a gate fails (for example a
refund rate above its limit). A pilot plan's scorecard is shown but its bonus is not payable.
Bonus money (tiers, the commission's threshold, money gates) is in the scorecard's explicit
currency, or a team's own where the scorecard overrides it for that team; the commission and
money gates are computed in that currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the organisation config builds rules; keep this module import-light
    from kpi_engine.figures import Figure
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
class TeamBonus:
    """A team's own bonus rules on a role's scorecard (its currency, tiers, commission, gates)."""

    currency: str | None
    tiers: tuple[Tier, ...]
    commission: Commission | None
    gates: tuple[Gate, ...]


@dataclass(frozen=True)
class ScorecardRule:
    """A role's scorecard (for one team, under one plan, when given): items whose weights sum
    to 100, and bonus rules.

    `currency` is the bonus money's (None: each person's team currency, allowed when every
    team of the role reports in one currency); `teams` override the bonus for a team.
    """

    role: str
    items: tuple[ScoreItem, ...]
    tiers: tuple[Tier, ...] = ()
    commission: Commission | None = None
    gates: tuple[Gate, ...] = ()
    team: str | None = None  # only this team's people; None: every team
    plan: str | None = None  # only while this plan is in force; None: under any plan
    currency: str | None = None
    teams: Mapping[str, TeamBonus] | None = None

    @property
    def metrics(self) -> set[str]:
        """Every metric the scorecard needs."""
        needed = {item.metric for item in self.items} | {gate.metric for gate in self.gates}
        return needed | ({self.commission.metric} if self.commission else set())

    def for_team(self, team: str) -> ScorecardRule:
        """The rule as it applies to a team's people (its own bonus where it has one)."""
        own = (self.teams or {}).get(team)
        if own is None:
            return self
        return replace(
            self,
            currency=own.currency,
            tiers=own.tiers,
            commission=own.commission,
            gates=own.gates,
            teams=None,
        )


def scorecard_for(
    rules: tuple[ScorecardRule, ...], role: str, team: str, plan: str | None
) -> ScorecardRule | None:
    """The scorecard for a person of `role` in `team` under `plan`: a team's own over the
    company-wide one, then one dated by the plan over an undated one."""
    candidates = [
        r for r in rules if r.role == role and r.team in (None, team) and r.plan in (None, plan)
    ]
    return max(candidates, key=lambda r: (r.team is not None, r.plan is not None), default=None)


@dataclass(frozen=True)
class ItemScore:
    """How one item scored."""

    item: ScoreItem
    progress: Progress | None
    achievement: Decimal | None  # clamped
    points: Decimal | None


@dataclass(frozen=True)
class GateResult:
    """A gate that failed, with the value that failed it."""

    gate: Gate
    value: Decimal | None


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
    config_version: int | None = None  # the stored configuration version it was scored with
    config_fingerprint: str | None = None
    kept: bool = False  # a closed month's kept configuration, not the current one
    currency: str | None = None  # the bonus money's
    gate_values: tuple[GateResult, ...] = ()  # the failed gates with their values
    missing_rates: tuple[tuple[str, date], ...] = ()  # FX its figures could not convert
    first_tier: Decimal | None = None  # the lowest tier's score when the score is below it

    @property
    def bonus(self) -> Decimal:
        """The bonus earned (0 when a gate fails or a pilot plan is in force)."""
        if self.failed_gates or self.pilot or self.score is None:
            return Decimal(0)
        return self.tier_bonus + self.commission

    @property
    def withheld(self) -> tuple[str, ...]:
        """Why the bonus is not payable (empty when it is): "gate" (a gate failed — see
        `failed_gates`), "pilot" (a pilot plan is in force), "no_score" (an item has no value
        or target yet); and "incomplete" when a missing FX rate leaves it uncertain."""
        reasons = []
        if self.failed_gates:
            reasons.append("gate")
        if self.pilot:
            reasons.append("pilot")
        if self.score is None:
            reasons.append("no_score")
        if self.missing_rates:
            reasons.append("incomplete")
        return tuple(reasons)


def score(
    rule: ScorecardRule,
    progress: Mapping[str, Progress],
    bonus_figures: Mapping[str, Figure] | None = None,
    currency: str | None = None,
) -> Scorecard:
    """Score `rule` against the progress of each of its metrics; the commission and money
    gates read `bonus_figures` (their metrics in the bonus currency) where given."""
    in_bonus = dict(bonus_figures or {})
    items: list[ItemScore] = []
    for item in rule.items:
        row = progress.get(item.metric)
        achievement = row.achievement if row else None
        if row is not None and row.beyond:  # 0 returns against a target above 0: the best
            achievement = item.cap
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

    def value_of(metric: str) -> Decimal | None:
        if metric in in_bonus:
            return in_bonus[metric].value
        row = progress.get(metric)
        return row.figure.value if row else None

    commission = Decimal(0)
    if rule.commission is not None:
        value = value_of(rule.commission.metric)
        if value is not None and value > rule.commission.above:
            commission = (value - rule.commission.above) * rule.commission.percent / 100
    failed = tuple(
        GateResult(gate, value_of(gate.metric))
        for gate in rule.gates
        if not gate.passes(value_of(gate.metric))
    )
    rows = list(progress.values())
    figures = [row.figure for row in rows] + list(in_bonus.values())
    lowest = min((tier.min_score for tier in rule.tiers), default=None)
    return Scorecard(
        role=rule.role,
        items=tuple(items),
        score=total,
        tier_bonus=tier_bonus,
        commission=commission,
        failed_gates=tuple(f.gate for f in failed),
        pilot=any(row.pilot for row in rows),
        provisional=any(row.figure.provisional for row in rows),
        currency=currency or rule.currency,
        gate_values=failed,
        missing_rates=tuple(sorted({m for f in figures for m in f.missing_rates})),
        first_tier=lowest if total is not None and lowest is not None and total < lowest else None,
    )
