"""Plans and targets as configured: the KPI plan, versioned and effective-dated.

A plan is a set of rules for spreading targets over days: weekday weights, promo-day
multipliers (11.11), hosts' live schedules and an hour-of-day profile. A target belongs to a
plan and gives a metric's value for an entity over a period (usually a month).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

from kpi_engine.instants import zone
from kpi_engine.periods import Period, day_of
from kpi_engine.scopes import Scope


@dataclass(frozen=True)
class Plan:
    """How targets are spread over time, in force from `effective_from` until the next plan."""

    id: str
    effective_from: date
    pilot: bool = False
    weekday_weights: tuple[Decimal, ...] = (Decimal(1),) * 7  # Monday … Sunday
    promo_days: Mapping[str, Decimal] | None = None  # "MM-DD" -> multiplier
    hourly_profile: tuple[Decimal, ...] = (Decimal(1),) * 24  # share of a day's target per hour
    live_days: Mapping[str, frozenset[int]] | None = None  # host → weekdays live (Monday = 0)
    off_day_weight: Decimal = Decimal(0)  # a host's day without a live, relative to a live day

    def day_weight(self, day: date, scope: Scope | None = None) -> Decimal:
        """The weight of a day: its weekday's weight times any promo multiplier, and for a
        host on the live schedule, times `off_day_weight` on a day they do not go live."""
        promo = (self.promo_days or {}).get(f"{day:%m-%d}", Decimal(1))
        weight = self.weekday_weights[day.weekday()] * promo
        live = (self.live_days or {}).get(scope.id) if scope and scope.kind == "person" else None
        if live is not None and day.weekday() not in live:
            weight *= self.off_day_weight
        return weight

    def elapsed_of_day(self, now: int, day: date, timezone: str) -> Fraction:
        """The share of a day's target expected by `now`, by the hour-of-day profile."""
        tz = zone(timezone)
        start, end = day_of(day, timezone).bounds()
        if now <= start:
            return Fraction(0)
        if now >= end:
            return Fraction(1)
        local = datetime.fromtimestamp(now, tz)
        total = sum(self.hourly_profile, Decimal(0))
        passed = sum(self.hourly_profile[: local.hour], Decimal(0))
        within = Fraction(local.minute * 60 + local.second, 3600)
        return (Fraction(passed) + Fraction(self.hourly_profile[local.hour]) * within) / Fraction(
            total
        )


@dataclass(frozen=True)
class Target:
    """A metric's target for an entity over a period, under a plan."""

    plan: str
    metric: str
    scope: Scope
    period: Period
    value: Decimal
