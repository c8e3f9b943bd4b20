"""Resolving entity and period text, and which earlier period a figure is compared with."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import create_engine

from bot.queries import resolve
from kpi_engine.organisation import load_organisation
from kpi_engine.periods import PeriodError
from kpi_engine.scopes import ScopeError
from tests.conftest import EXAMPLE_CONFIG

ORG = load_organisation(EXAMPLE_CONFIG)
ENGINE = create_engine("sqlite://")  # resolving touches no table
NOW = int(datetime(2026, 11, 24, 2, 0, tzinfo=UTC).timestamp())  # 10:00 on the 24th in Shanghai


def test_resolves_in_the_entitys_zone() -> None:
    query = resolve(ENGINE, ORG, "person:jessica.lee", "today", now=lambda _zone: NOW)
    assert query.period.first == date(2026, 11, 23)  # still the 23rd in Los Angeles
    assert query.currency == "USD"
    with pytest.raises(ScopeError, match="unknown person 'nobody'"):
        resolve(ENGINE, ORG, "person:nobody", "today", now=lambda _zone: NOW)
    with pytest.raises(PeriodError):
        resolve(ENGINE, ORG, "company", "someday", now=lambda _zone: NOW)


def test_a_period_under_way_is_compared_with_as_many_earlier_days() -> None:
    month = resolve(ENGINE, ORG, "team:sz-live", "this_month", now=lambda _zone: NOW)
    earlier = month.earlier("previous")
    assert earlier is not None
    assert (earlier.first, earlier.last) == (date(2026, 10, 1), date(2026, 10, 24))
    year = month.earlier("year_ago")
    assert year is not None and (year.first, year.last) == (date(2025, 11, 1), date(2025, 11, 24))
    done = resolve(ENGINE, ORG, "team:sz-live", "last_month", now=lambda _zone: NOW).earlier(
        "previous"
    )
    assert done is not None and (done.first, done.last) == (date(2026, 9, 1), date(2026, 9, 30))
    assert (
        resolve(ENGINE, ORG, "team:sz-live", "today", now=lambda _zone: NOW).earlier("none") is None
    )
    with pytest.raises(PeriodError, match="compare must be previous, year_ago or none"):
        month.earlier("lastyear")
