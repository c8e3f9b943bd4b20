"""Reporting periods — day, week, month, custom — always in an explicit time zone.

A period is a run of whole local calendar days in one IANA zone; its instants are the epoch
bounds of those days there, so a period that spans a DST change has 23- or 25-hour days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Literal

from kpi_engine.instants import day_bounds, is_zone, zone

PeriodKind = Literal["day", "week", "month", "custom"]
WeekStart = Literal["monday", "sunday"]


# Figures are kept for instants of the Unix era; a period outside these years means nothing
# (and a year before or after it could not even be computed).
FIRST_YEAR, LAST_YEAR = 1970, 9998


class PeriodError(ValueError):
    """A period that cannot be understood or does not make sense."""


@dataclass(frozen=True)
class Period:
    """Local days `first`..`last` (inclusive) in `timezone`."""

    kind: PeriodKind
    first: date
    last: date
    timezone: str

    def __post_init__(self) -> None:
        if self.first.year < FIRST_YEAR or self.last.year > LAST_YEAR:
            raise PeriodError(
                f"{self.first}..{self.last} is outside the years figures are kept for "
                f"({FIRST_YEAR}–{LAST_YEAR})"
            )
        if self.last < self.first:
            raise PeriodError(f"a period cannot end ({self.last}) before it starts ({self.first})")
        if not is_zone(self.timezone):
            raise PeriodError(f"unknown time zone {self.timezone!r}")

    @property
    def days(self) -> int:
        """Number of local calendar days."""
        return (self.last - self.first).days + 1

    def bounds(self) -> tuple[int, int]:
        """[start, end) in epoch seconds."""
        tz = zone(self.timezone)
        return day_bounds(self.first, tz)[0], day_bounds(self.last, tz)[1]

    def dates(self) -> list[date]:
        """Every local date of the period, in order."""
        return [self.first + timedelta(days=offset) for offset in range(self.days)]

    def contains(self, day: date) -> bool:
        """True when `day` is one of the period's dates."""
        return self.first <= day <= self.last

    def previous(self) -> Period:
        """The period just before, of the same kind (a month is the previous calendar month)."""
        if self.kind == "month":
            return month_of(self.first - timedelta(days=1), self.timezone)
        return Period(
            self.kind,
            self.first - timedelta(days=self.days),
            self.first - timedelta(days=1),
            self.timezone,
        )

    def year_ago(self) -> Period:
        """The same period a year earlier: same dates (29 Feb → 28 Feb), ISO week, or month."""
        if self.kind == "week":
            return Period(
                "week",
                self.first - timedelta(weeks=52),
                self.last - timedelta(weeks=52),
                self.timezone,
            )
        if self.kind == "month":
            return month_of(_year_earlier(self.first), self.timezone)
        return Period(self.kind, _year_earlier(self.first), _year_earlier(self.last), self.timezone)

    def elapsed(self, now: int) -> Fraction:
        """The share of the period's time that has passed at `now`, from 0 to 1, exactly."""
        start, end = self.bounds()
        if now <= start:
            return Fraction(0)
        if now >= end:
            return Fraction(1)
        return Fraction(now - start, end - start)

    def label(self) -> str:
        """A compact, language-neutral label: 2026-11-20, 2026-W47, 2026-11, or a range."""
        if self.kind == "day":
            return self.first.isoformat()
        if self.kind == "month":
            return f"{self.first:%Y-%m}"
        if self.kind == "week" and self.first.isoweekday() == 1:
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


def _year_earlier(day: date) -> date:
    if day.year <= FIRST_YEAR:
        raise PeriodError(f"there is no year before {day.year} to compare with")
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def day_of(day: date, timezone: str) -> Period:
    """One local day."""
    return Period("day", day, day, timezone)


def _outside(day: date) -> PeriodError:
    """The error for a period around `day` that the calendar cannot even hold (year 1, 9999)."""
    return PeriodError(
        f"{day} is outside the years figures are kept for ({FIRST_YEAR}–{LAST_YEAR})"
    )


def week_of(day: date, timezone: str, week_start: WeekStart = "monday") -> Period:
    """The week containing `day`, starting on Monday (ISO) or Sunday."""
    offset = day.weekday() if week_start == "monday" else (day.weekday() + 1) % 7
    try:
        first = day - timedelta(days=offset)
        return Period("week", first, first + timedelta(days=6), timezone)
    except OverflowError:
        raise _outside(day) from None


def month_of(day: date, timezone: str) -> Period:
    """The calendar month containing `day`."""
    first = day.replace(day=1)
    try:
        following = (first + timedelta(days=32)).replace(day=1)
    except OverflowError:
        raise _outside(day) from None
    return Period("month", first, following - timedelta(days=1), timezone)


def today(now: int, timezone: str) -> date:
    """The local date at instant `now` in `timezone`."""
    return datetime.fromtimestamp(now, zone(timezone)).date()


_LAST_N_DAYS = re.compile(r"last_(\d{1,3})_days")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")


def earlier_period(period: Period, compare: Literal["previous", "year_ago"], now: int) -> Period:
    """The period to compare `period` with: the previous one, or the same one a year ago.

    A week or month still under way is compared with as many days of the earlier one
    (month-to-date against last month's same days), not with all of it.
    """
    earlier = period.previous() if compare == "previous" else period.year_ago()
    current = today(now, period.timezone)
    if period.kind != "day" and period.contains(current):
        elapsed = (current - period.first).days
        last = min(earlier.first + timedelta(days=elapsed), earlier.last)
        return Period("custom", earlier.first, last, earlier.timezone)
    return earlier


def parse_period(text: str, *, now: int, timezone: str, week_start: WeekStart = "monday") -> Period:
    """A period from its canonical name, relative to `now` in `timezone`.

    Accepted: today, yesterday, this_week, last_week, this_month, last_month, last_N_days
    (ending today), YYYY-MM-DD, YYYY-MM, YYYY-Www (ISO week) and FIRST..LAST (dates).
    """
    token = text.strip().lower()
    current = today(now, timezone)
    if token == "today":
        return day_of(current, timezone)
    if token == "yesterday":
        return day_of(current - timedelta(days=1), timezone)
    if token in ("this_week", "week"):
        return week_of(current, timezone, week_start)
    if token == "last_week":
        return week_of(current, timezone, week_start).previous()
    if token in ("this_month", "month"):
        return month_of(current, timezone)
    if token == "last_month":
        return month_of(current, timezone).previous()
    if match := _LAST_N_DAYS.fullmatch(token):
        count = int(match.group(1))
        if count < 1:
            raise PeriodError("last_N_days needs N ≥ 1")
        return Period("custom", current - timedelta(days=count - 1), current, timezone)
    if ".." in token:
        start, _, end = token.partition("..")
        return Period("custom", _date(start), _date(end), timezone)
    if match := _WEEK.fullmatch(text.strip()):
        try:
            monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            raise PeriodError(f"{text!r} is not an ISO week") from None
        return week_of(monday, timezone)
    if match := _MONTH.fullmatch(token):
        year, month = int(match.group(1)), int(match.group(2))
        try:
            first = date(year, month, 1)
        except ValueError:  # month 13, or year 0
            raise PeriodError(f"{text!r} is not a month") from None
        return month_of(first, timezone)
    try:
        return day_of(date.fromisoformat(token), timezone)
    except ValueError:
        raise PeriodError(
            f"{text!r} is not a period (try today, yesterday, this_week, last_week, this_month, "
            "last_month, last_7_days, 2026-11-20, 2026-11, 2026-W47 or 2026-11-01..2026-11-15)"
        ) from None


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(f"{text.strip()!r} is not a date (expected YYYY-MM-DD)") from None
