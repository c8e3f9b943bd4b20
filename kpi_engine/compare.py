"""Comparisons: period-over-period deltas, rankings with ties, movers, and why a figure changed.

The explanation splits a GMV change into traffic × conversion × order value over the orders the
traffic data covers, and names what it leaves unexplained. With the shops' own traffic
(`shop_visitors`) every order is covered: visitors × shop conversion × AOV. With live traffic
only, live views cover the live orders alone: live views × live conversion × live order value
explain the live GMV, and the change of the other orders (Amazon, the shop page, videos…) is
stated as unexplained, with the share of orders the traffic covers. Without any traffic the
split is orders × AOV. The parts are Shapley values — each factor's average marginal effect
over every order of switching factors from before to after — so drivers plus the unexplained
part always add up exactly to the total change, zeros included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from itertools import permutations
from math import factorial
from typing import Any, Literal

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
    """One factor of a product, before and after, and its share of the change.

    `name` is its role (traffic, conversion, aov, orders; "other" for the unexplained part)
    and `metric` the catalogue metric it is, so every surface names it as the catalogue does.
    """

    name: str
    before: Decimal
    after: Decimal
    contribution: Decimal
    metric: str | None = None


@dataclass(frozen=True)
class Explanation:
    """A change split into factor contributions that, with the unexplained part, add up to it."""

    before: Decimal
    after: Decimal
    drivers: tuple[Driver, ...]
    traffic: str | None = None  # "shop_visitors", "views" or None (orders × AOV)
    unexplained: Decimal = Decimal(0)  # the change of the orders the traffic does not cover
    covered_share: Decimal | None = None  # share of the orders (after) the traffic covers
    period: Any = None  # the Period explained, when known
    previous: Any = None  # the Period it is compared with (to date for one under way)

    @property
    def change(self) -> Decimal:
        """after − before."""
        return self.after - self.before

    @property
    def biggest(self) -> Driver | None:
        """The factor that moved the figure most (by absolute contribution); "other" when the
        orders the traffic does not cover moved it more."""
        moving = [d for d in self.drivers if d.contribution]
        if self.unexplained:
            moving.append(Driver("other", Decimal(0), Decimal(0), self.unexplained))
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


# What the explanation reads, and with shop traffic also `shop_visitors`.
EXPLAIN_METRICS = ("gmv", "orders", "live_gmv", "live_orders", "views")


def explain_gmv(
    before: Mapping[str, Decimal | None],
    after: Mapping[str, Decimal | None],
    *,
    shop_traffic: bool = False,
) -> Explanation | None:
    """Split a GMV change into traffic × conversion × order value (module docstring).

    `shop_traffic`: `shop_visitors` covers every order of both periods. None when GMV is
    missing, or orders are 0 on a side where GMV is not (the identity does not hold).
    """
    gmv0, gmv1 = before.get("gmv"), after.get("gmv")
    orders0, orders1 = _zero(before.get("orders")), _zero(after.get("orders"))
    if gmv0 is None or gmv1 is None:
        return None
    if (orders0 == 0 and gmv0 != 0) or (orders1 == 0 and gmv1 != 0):
        return None
    visitors0, visitors1 = _zero(before.get("shop_visitors")), _zero(after.get("shop_visitors"))
    views0, views1 = _zero(before.get("views")), _zero(after.get("views"))
    live0, live1 = _zero(before.get("live_gmv")), _zero(after.get("live_gmv"))
    live_orders0, live_orders1 = _zero(before.get("live_orders")), _zero(after.get("live_orders"))
    if shop_traffic and visitors0 and visitors1:
        names = [("traffic", "shop_visitors"), ("conversion", "shop_conversion_rate")]
        names.append(("aov", "aov"))
        factors0 = [Fraction(visitors0), _ratio(orders0, visitors0), _ratio(gmv0, orders0)]
        factors1 = [Fraction(visitors1), _ratio(orders1, visitors1), _ratio(gmv1, orders1)]
        traffic, covered0, covered1, share = "shop_visitors", gmv0, gmv1, Decimal(1)
    elif views0 and views1:
        names = [("traffic", "views"), ("conversion", "live_conversion_rate")]
        names.append(("aov", "live_aov"))
        factors0 = [Fraction(views0), _ratio(live_orders0, views0), _ratio(live0, live_orders0)]
        factors1 = [Fraction(views1), _ratio(live_orders1, views1), _ratio(live1, live_orders1)]
        traffic, covered0, covered1 = "views", live0, live1
        orders, covered = (orders1, live_orders1) if orders1 else (orders0, live_orders0)
        share = covered / orders if orders else Decimal(1)
    else:
        names = [("orders", "orders"), ("aov", "aov")]
        factors0 = [Fraction(orders0), _ratio(gmv0, orders0)]
        factors1 = [Fraction(orders1), _ratio(gmv1, orders1)]
        traffic, covered0, covered1, share = None, gmv0, gmv1, Decimal(1)
    shares = shapley(factors0, factors1)
    drivers = tuple(
        Driver(name, _decimal(f0), _decimal(f1), _decimal(part), metric)
        for (name, metric), f0, f1, part in zip(names, factors0, factors1, shares, strict=True)
    )
    unexplained = (gmv1 - covered1) - (gmv0 - covered0)
    return Explanation(gmv0, gmv1, drivers, traffic, unexplained, share)


def _zero(value: Decimal | None) -> Decimal:
    return Decimal(0) if value is None else value


def _ratio(numerator: Decimal, denominator: Decimal) -> Fraction:
    return Fraction(0) if not denominator else Fraction(numerator) / Fraction(denominator)


def _decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)
