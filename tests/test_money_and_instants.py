"""Exact money parsing and instant parsing across offsets, naive local times and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpi_engine.instants import InstantError, day_bounds, local_date, parse_instant, zone
from kpi_engine.money import Money, MoneyError, minor_exponent, parse_minor

LA = zone("America/Los_Angeles")
SHANGHAI = zone("Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "USD", 1250),
        ("0.01", "USD", 1),
        ("1200", "JPY", 1200),
        ("1200.00", "JPY", 1200),
        ("1.234", "KWD", 1234),
        (" 7 ", "CNY", 700),
        ("-3.10", "GBP", -310),
    ],
)
def test_parse_minor_is_exact(text: str, currency: str, minor: int) -> None:
    assert parse_minor(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("12.345", "USD", "more decimals"),
        ("12.5", "JPY", "more decimals"),
        ("abc", "USD", "not a decimal"),
        ("NaN", "USD", "not a finite"),
        ("1", "XXY", "unknown currency"),
        # Not plain ASCII decimals: refused rather than read as something else.
        ("1e3", "USD", "not a decimal"),
        ("1_200", "USD", "not a decimal"),
        ("1,200", "USD", "not a decimal"),
        ("１２００", "JPY", "not a decimal"),
        ("²", "USD", "not a decimal"),
        ("1" * 16, "USD", "implausibly large"),
        ("1e400", "USD", "not a decimal"),
    ],
)
def test_parse_minor_refuses_inexact(text: str, currency: str, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        parse_minor(text, currency)


@given(
    st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1),
    st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_money_round_trips_through_text(minor: int, currency: str) -> None:
    money = Money(minor, currency)
    assert money.amount == Decimal(minor).scaleb(-minor_exponent(currency))
    assert parse_minor(str(money).split()[0], currency) == minor


def test_instant_forms_agree() -> None:
    expected = int(datetime(2026, 11, 21, 4, 15, tzinfo=UTC).timestamp())
    assert parse_instant("2026-11-20T20:15:00-08:00", SHANGHAI) == expected
    assert parse_instant("2026-11-21T04:15:00Z", SHANGHAI) == expected
    assert parse_instant("2026-11-20 20:15:00", LA) == expected
    assert parse_instant(str(expected), LA) == expected


def test_naive_time_in_dst_gap_is_refused() -> None:
    # 2026-03-08 02:30 never happened in Los Angeles (clocks jumped from 02:00 to 03:00).
    with pytest.raises(InstantError, match="daylight-saving gap"):
        parse_instant("2026-03-08 02:30:00", LA)


def test_naive_time_in_repeated_hour_takes_first_occurrence() -> None:
    # 2026-11-01 01:30 happened twice in Los Angeles; the first was PDT (UTC-7).
    first = int(datetime(2026, 11, 1, 8, 30, tzinfo=UTC).timestamp())
    assert parse_instant("2026-11-01 01:30:00", LA) == first


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-11-20",
        "yesterday",
        "17637000000000",
        "20/11/2026 10:00",
        "46346",  # an Excel date serial number, not 1970-01-01T12:52:26Z
        "1999-12-31 23:59:59",
        "１７９５５０００００",  # full-width digits
    ],
)
def test_bad_instants(text: str) -> None:
    with pytest.raises(InstantError):
        parse_instant(text, LA)


def test_day_bounds_follow_dst() -> None:
    start, end = day_bounds(date(2026, 11, 1), LA)
    assert end - start == 25 * 3600
    start, end = day_bounds(date(2026, 3, 8), LA)
    assert end - start == 23 * 3600
    assert local_date(start, LA) == date(2026, 3, 8)
    assert local_date(end, LA) == date(2026, 3, 9)


@given(
    st.integers(min_value=0, max_value=4_000_000_000),
    st.sampled_from(["America/Los_Angeles", "Europe/London", "Asia/Tokyo", "Australia/Lord_Howe"]),
)
def test_an_instant_lies_within_its_local_day(epoch: int, name: str) -> None:
    tz = zone(name)
    start, end = day_bounds(local_date(epoch, tz), tz)
    assert start <= epoch < end


@given(
    st.decimals(min_value=-(10**12), max_value=10**12, places=4, allow_nan=False),
    st.sampled_from(["USD", "JPY", "KWD", "CNY"]),
)
def test_fast_path_agrees_with_decimal(value: Decimal, currency: str) -> None:
    text = f"{value:f}"
    exponent = minor_exponent(currency)
    scaled = value.scaleb(exponent)
    if scaled == scaled.to_integral_value():
        assert parse_minor(text, currency) == int(scaled)
    else:
        with pytest.raises(MoneyError):
            parse_minor(text, currency)
