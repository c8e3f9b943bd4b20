"""Plans and targets as configured: the KPI plan, versioned and effective-dated.

A plan is a set of rules for spreading targets over days: weekday weights, promo-day
multipliers (11.11), hosts' live schedules and an hour-of-day profile. A target belongs to a
plan and gives a metric's value for an entity over a period (usually a month), either once or
recurring every day, week or month from a date on, optionally stepping up or down each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from kpi_engine.calendar import CalendarEvent
from kpi_engine.calendar import day_weight as calendar_weight
from kpi_engine.instants import zone
from kpi_engine.periods import Period, WeekStart, day_of, month_of, week_of
from kpi_engine.scopes import Scope

Every = Literal["day", "week", "month"]


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
    events: tuple[CalendarEvent, ...] = ()  # the organisation's calendar
    ramp_percent: tuple[Decimal, ...] = ()  # a new hire's role targets by month of service

    def day_weight(self, day: date, scope: Scope | None = None) -> Decimal:
        """The weight of a day: its weekday's weight times any promo multiplier and the
        weights of the calendar events covering it for `scope`, and for a host on the live
        schedule, times `off_day_weight` on a day they do not go live."""
        promo = (self.promo_days or {}).get(f"{day:%m-%d}", Decimal(1))
        weight = self.weekday_weights[day.weekday()] * promo
        if self.events:
            weight *= calendar_weight(self.events, day, scope)
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
class Step:
    """How a recurring target changes from one occurrence to the next."""

    percent: Decimal | None = None  # compounding: × (1 + percent / 100) per occurrence
    amount: Decimal | None = None  # added per occurrence

    def label(self) -> str:
        """`+5%`, `-2.5%` or `+50000`."""
        if self.percent is not None:
            return f"{self.percent:+}%"
        return f"{self.amount:+}"


@dataclass(frozen=True)
class Recurrence:
    """A target repeated for each day, week or month from `start` until `until` (inclusive)."""

    every: Every
    start: date
    until: date | None = None
    step: Step | None = None
    quantum: Decimal = Decimal("0.01")  # a stepped value is rounded (half up) to this
    week_start: WeekStart = "monday"

    def period_of(self, day: date, timezone: str) -> Period:
        """The occurrence (a day, week or month in `timezone`) containing `day`."""
        if self.every == "month":
            return month_of(day, timezone)
        if self.every == "week":
            return week_of(day, timezone, self.week_start)
        return day_of(day, timezone)

    def index(self, day: date) -> int:
        """How many occurrences came before the one containing `day` (0 for the first)."""
        if self.every == "month":
            return (day.year - self.start.year) * 12 + day.month - self.start.month
        if self.every == "week":
            first = self.period_of(self.start, "UTC").first
            return (self.period_of(day, "UTC").first - first).days // 7
        return (day - self.start).days

    def value(self, base: Decimal, index: int) -> Decimal:
        """The value of occurrence `index`: exact compounding (or adding), rounded once."""
        if self.step is None or index == 0:
            return base
        if self.step.amount is not None:
            return base + self.step.amount * index
        assert self.step.percent is not None
        exact = Fraction(base) * (1 + Fraction(self.step.percent) / 100) ** index
        scaled = abs(exact / Fraction(self.quantum))
        units = (2 * scaled.numerator + scaled.denominator) // (2 * scaled.denominator)
        return Decimal(units if exact >= 0 else -units) * self.quantum  # half-up, as money

    def label(self) -> str:
        """`every month from 2026-07-01 until 2027-06-30 +5%`."""
        text = f"every {self.every} from {self.start.isoformat()}"
        if self.until is not None:
            text += f" until {self.until.isoformat()}"
        return f"{text} {self.step.label()}" if self.step else text


@dataclass(frozen=True)
class Target:
    """A metric's target for an entity over a period, under a plan; `recurrence` repeats it.

    A recurring target's `period` is its first occurrence and `value` that occurrence's value.
    """

    plan: str
    metric: str
    scope: Scope
    period: Period
    value: Decimal
    recurrence: Recurrence | None = None
    default: str | None = None  # a role-wide target's "role:streamer [in team:x]" for a person
    hired: date | None = None  # a role-wide target applies from the person's hire date

    def occurrence(self, day: date) -> tuple[Period, Decimal] | None:
        """The period and value that this target gives `day`, if it applies on that day."""
        if self.hired is not None and day < self.hired:
            return None
        rule = self.recurrence
        if rule is None:
            return (self.period, self.value) if self.period.contains(day) else None
        if day < rule.start or (rule.until is not None and day > rule.until):
            return None
        return rule.period_of(day, self.period.timezone), rule.value(self.value, rule.index(day))

    def label(self) -> str:
        """The target's period as configured (`2026-11`, or its recurrence), and the role
        it is a default for."""
        text = self.recurrence.label() if self.recurrence else self.period.label()
        return f"{self.default}: {text}" if self.default else text

    @property
    def rank(self) -> int:
        """Whose target it is: 0 the entity's own, 1 its team's role-wide default, 2 the
        company's role-wide default (a lower rank overrides a higher one)."""
        if self.default is None:
            return 0
        return 1 if " in team:" in self.default else 2

    def ramp_factor(self, day: date, steps: tuple[Decimal, ...]) -> Decimal:
        """A new hire's share of a role-wide target: `steps[n]` % in their month of service
        n + 1 (from `hired`), all of it afterwards."""
        if self.hired is None or not steps:
            return Decimal(1)
        months = (day.year - self.hired.year) * 12 + day.month - self.hired.month
        if _add_months(self.hired, months) > day:
            months -= 1
        return steps[months] / 100 if months < len(steps) else Decimal(1)


def _add_months(day: date, months: int) -> date:
    """The same day `months` later, or that month's last day when it has none (31 January
    + 1 month = 28/29 February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = (month_of(date(year, month + 1, 1), "UTC").last).day
    return date(year, month + 1, min(day.day, last))
