"""Comparisons: period-over-period deltas, rankings with ties, movers, and why a figure changed.

The explanation splits a GMV change into traffic × conversion × average order value. It uses
Shapley values — each factor's average marginal effect over every order of switching factors
from before to after — so the parts always add up exactly to the total change, zeros included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from itertools import permutations
from math import factorial
from typing import Literal

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class Delta:
    """How a value moved from a previous period."""

    before: Decimal | None
    after: Decimal | None

    @property
    def change(self) -> Decimal | None:
        """after − before."""
        return None if self.before is None or self.after is None else self.after - self.before

    @property
    def ratio(self) -> Decimal | None:
        """The relative change (after ÷ before − 1); None when before is 0 or missing."""
        change = self.change
        return None if change is None or not self.before else change / self.before


@dataclass(frozen=True)
class Ranked:
    """An entity's place: 1 is best; tied values share a place (1, 2, 2, 4)."""

    entity: str
    value: Decimal | None
    rank: int | None  # None: no value, not ranked


def rank(values: Mapping[str, Decimal | None], direction: Direction = "higher") -> list[Ranked]:
    """Competition ranking: best first, ties share a place, entities without a value last."""
    present = [(entity, value) for entity, value in values.items() if value is not None]
    present.sort(key=lambda item: (-item[1] if direction == "higher" else item[1], item[0]))
    ranked: list[Ranked] = []
    for position, (entity, value) in enumerate(present, start=1):
        place = ranked[-1].rank if ranked and ranked[-1].value == value else position
        ranked.append(Ranked(entity, value, place))
    missing = sorted(entity for entity, value in values.items() if value is None)
    return ranked + [Ranked(entity, None, None) for entity in missing]


def movers(
    deltas: Mapping[str, Delta], count: int = 3
) -> tuple[list[tuple[str, Delta]], list[tuple[str, Delta]]]:
    """The `count` biggest risers and fallers by absolute change (ties by name)."""
    moved = [(entity, delta) for entity, delta in deltas.items() if delta.change is not None]
    risers = sorted(
        (m for m in moved if m[1].change and m[1].change > 0),
        key=lambda m: (-(m[1].change or 0), m[0]),
    )
    fallers = sorted(
        (m for m in moved if m[1].change and m[1].change < 0),
        key=lambda m: (m[1].change or 0, m[0]),
    )
    return risers[:count], fallers[:count]


@dataclass(frozen=True)
class Driver:
    """One factor of a product, before and after, and its share of the change."""

    name: str
    before: Decimal
    after: Decimal
    contribution: Decimal


@dataclass(frozen=True)
class Explanation:
    """A change split into factor contributions that add up to it."""

    before: Decimal
    after: Decimal
    drivers: tuple[Driver, ...]

    @property
    def change(self) -> Decimal:
        """after − before."""
        return self.after - self.before

    @property
    def biggest(self) -> Driver | None:
        """The factor that moved the figure most (by absolute contribution)."""
        moving = [d for d in self.drivers if d.contribution]
        return max(moving, key=lambda d: abs(d.contribution), default=None)


def shapley(before: Sequence[Fraction], after: Sequence[Fraction]) -> list[Fraction]:
    """Each factor's Shapley share of Π(after) − Π(before); the shares sum to it exactly."""
    count = len(before)
    shares = [Fraction(0)] * count
    for order in permutations(range(count)):
        current = list(before)
        value = _product(current)
        for index in order:
            current[index] = after[index]
            new = _product(current)
            shares[index] += new - value
            value = new
    total = factorial(count)
    return [share / total for share in shares]


def _product(values: Sequence[Fraction]) -> Fraction:
    result = Fraction(1)
    for value in values:
        result *= value
    return result


def explain_gmv(
    before: Mapping[str, Decimal | None], after: Mapping[str, Decimal | None]
) -> Explanation | None:
    """Split a GMV change into traffic (views), conversion (orders ÷ views) and AOV.

    Without live traffic in either period the split is orders × AOV. None when GMV is missing,
    or orders are 0 on a side where GMV is not (the identity does not hold).
    """
    gmv0, gmv1 = before.get("gmv"), after.get("gmv")
    orders0, orders1 = before.get("orders") or Decimal(0), after.get("orders") or Decimal(0)
    views0, views1 = before.get("views") or Decimal(0), after.get("views") or Decimal(0)
    if gmv0 is None or gmv1 is None:
        return None
    if (orders0 == 0 and gmv0 != 0) or (orders1 == 0 and gmv1 != 0):
        return None
    aov0 = _ratio(gmv0, orders0)
    aov1 = _ratio(gmv1, orders1)
    if views0 and views1:
        names = ["traffic", "conversion", "aov"]
        factors0 = [Fraction(views0), _ratio(orders0, views0), aov0]
        factors1 = [Fraction(views1), _ratio(orders1, views1), aov1]
    else:
        names = ["orders", "aov"]
        factors0, factors1 = [Fraction(orders0), aov0], [Fraction(orders1), aov1]
    shares = shapley(factors0, factors1)
    drivers = tuple(
        Driver(name, _decimal(f0), _decimal(f1), _decimal(share))
        for name, f0, f1, share in zip(names, factors0, factors1, shares, strict=True)
    )
    return Explanation(gmv0, gmv1, drivers)


def _ratio(numerator: Decimal, denominator: Decimal) -> Fraction:
    return Fraction(0) if not denominator else Fraction(numerator) / Fraction(denominator)


def _decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)
