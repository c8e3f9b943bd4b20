"""Periods in explicit time zones: boundaries, DST, week starts, previous periods, parsing."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpi_engine.periods import (
    Period,
    PeriodError,
    day_of,
    month_of,
    parse_period,
    today,
    week_of,
)

ZONES = [
    "Asia/Shanghai",
    "America/Los_Angeles",
    "Europe/London",
    "Asia/Tokyo",
    "Australia/Lord_Howe",
]
days = st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 31))
zones = st.sampled_from(ZONES)


def epoch(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def test_a_day_in_shanghai_and_in_los_angeles() -> None:
    # 2026-11-20 in Shanghai (UTC+8) starts at 16:00 UTC the day before.
    assert day_of(date(2026, 11, 20), "Asia/Shanghai").bounds() == (
        epoch(2026, 11, 19, 16, 0),
        epoch(2026, 11, 20, 16, 0),
    )
    assert day_of(date(2026, 11, 20), "America/Los_Angeles").bounds() == (
        epoch(2026, 11, 20, 8, 0),
        epoch(2026, 11, 21, 8, 0),
    )


def test_dst_days_and_a_month_across_the_change() -> None:
    start, end = day_of(date(2026, 11, 1), "America/Los_Angeles").bounds()
    assert end - start == 25 * 3600
    start, end = day_of(date(2026, 3, 29), "Europe/London").bounds()
    assert end - start == 23 * 3600
    start, end = month_of(date(2026, 11, 15), "America/Los_Angeles").bounds()
    assert end - start == 30 * 86400 + 3600


def test_weeks_start_on_monday_or_sunday() -> None:
    thursday = date(2026, 11, 19)
    assert week_of(thursday, "UTC").first == date(2026, 11, 16)
    assert week_of(thursday, "UTC", "sunday").first == date(2026, 11, 15)
    assert week_of(date(2026, 11, 15), "UTC", "sunday").first == date(2026, 11, 15)
    assert week_of(thursday, "UTC").label() == "2026-W47"


def test_previous_and_year_ago() -> None:
    assert month_of(date(2026, 3, 31), "UTC").previous() == Period(
        "month", date(2026, 2, 1), date(2026, 2, 28), "UTC"
    )
    assert day_of(date(2026, 3, 1), "UTC").previous().first == date(2026, 2, 28)
    assert day_of(date(2028, 2, 29), "UTC").year_ago().first == date(2027, 2, 28)
    assert week_of(date(2026, 11, 19), "UTC").year_ago().label() == "2025-W47"
    custom = Period("custom", date(2026, 11, 1), date(2026, 11, 10), "UTC")
    assert custom.previous() == Period("custom", date(2026, 10, 22), date(2026, 10, 31), "UTC")


def test_elapsed_is_exact() -> None:
    period = day_of(date(2026, 11, 20), "Asia/Shanghai")
    start, end = period.bounds()
    assert period.elapsed(start - 1) == 0
    assert period.elapsed(start + 6 * 3600) == Fraction(1, 4)
    assert period.elapsed(end) == 1


NOW = epoch(2026, 11, 20, 2, 0)  # 10:00 in Shanghai, 18:00 on the 19th in Los Angeles


@pytest.mark.parametrize(
    ("text", "zone_name", "expected"),
    [
        ("today", "Asia/Shanghai", ("day", "2026-11-20", "2026-11-20")),
        ("today", "America/Los_Angeles", ("day", "2026-11-19", "2026-11-19")),
        ("yesterday", "Asia/Shanghai", ("day", "2026-11-19", "2026-11-19")),
        ("this_week", "Asia/Shanghai", ("week", "2026-11-16", "2026-11-22")),
        ("last_week", "Asia/Shanghai", ("week", "2026-11-09", "2026-11-15")),
        ("this_month", "Asia/Shanghai", ("month", "2026-11-01", "2026-11-30")),
        ("last_month", "Asia/Shanghai", ("month", "2026-10-01", "2026-10-31")),
        ("last_7_days", "Asia/Shanghai", ("custom", "2026-11-14", "2026-11-20")),
        ("2026-02", "UTC", ("month", "2026-02-01", "2026-02-28")),
        ("2026-W01", "UTC", ("week", "2025-12-29", "2026-01-04")),
        ("2026-11-20", "UTC", ("day", "2026-11-20", "2026-11-20")),
        ("2026-11-01..2026-11-15", "UTC", ("custom", "2026-11-01", "2026-11-15")),
    ],
)
def test_parse_period(text: str, zone_name: str, expected: tuple[str, str, str]) -> None:
    period = parse_period(text, now=NOW, timezone=zone_name)
    assert (period.kind, period.first.isoformat(), period.last.isoformat()) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tomorrow-ish", "is not a period"),
        ("2026-13", "is not a month"),
        ("2026-W54", "is not an ISO week"),
        ("2026-11-15..2026-11-01", "cannot end"),
        ("2026-11-01..soon", "is not a date"),
    ],
)
def test_bad_periods(text: str, message: str) -> None:
    with pytest.raises(PeriodError, match=message):
        parse_period(text, now=NOW, timezone="UTC")


@given(days, zones)
def test_a_period_is_its_days_back_to_back(day: date, zone_name: str) -> None:
    for period in (day_of(day, zone_name), week_of(day, zone_name), month_of(day, zone_name)):
        bounds = [day_of(d, zone_name).bounds() for d in period.dates()]
        assert bounds[0][0] == period.bounds()[0] and bounds[-1][1] == period.bounds()[1]
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        assert all(82800 <= end - start <= 90000 for start, end in bounds)  # 23 to 25 hours
        assert period.contains(day)


@given(days, zones, st.sampled_from(["monday", "sunday"]))
def test_previous_periods_adjoin(day: date, zone_name: str, week_start: str) -> None:
    for period in (
        day_of(day, zone_name),
        week_of(day, zone_name, week_start),  # type: ignore[arg-type]
        month_of(day, zone_name),
    ):
        before = period.previous()
        assert before.kind == period.kind
        assert before.last + timedelta(days=1) == period.first
        assert before.bounds()[1] == period.bounds()[0]
    assert week_of(day, zone_name, week_start).days == 7  # type: ignore[arg-type]


@given(st.integers(min_value=946684800, max_value=4_000_000_000), zones)
def test_today_contains_now(now: int, zone_name: str) -> None:
    start, end = parse_period("today", now=now, timezone=zone_name).bounds()
    assert start <= now < end
    assert today(now, zone_name) == parse_period("today", now=now, timezone=zone_name).first
