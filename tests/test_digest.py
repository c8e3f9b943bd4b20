"""A team's morning digest figures, from rollups and from the raw rows alike."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.digest import TEAM_METRICS, digest_round
from kpi_engine.figures import Figures, Scope
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import Organisation
from kpi_engine.periods import day_of
from kpi_engine.targets import Plans
from tests.conftest import EXAMPLE_CONFIG


def test_the_digest_round_from_rollups_equals_the_raw_rows(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    data = generate(organisation, EXAMPLE_CONFIG, tmp_path, days=4, end=date(2026, 11, 12), seed=2)
    for label, path in data.files.items():
        assert import_file(engine, organisation, KINDS[FILE_KINDS.get(label, label)], path).ok
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    # 09:00 on 12 November in Shanghai: sz-live's yesterday is 11.11 (LA's is the 10th).
    now = int(datetime(2026, 11, 12, 9, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
    fast = digest_round(Figures(engine, organisation), plans, now=now)
    slow = digest_round(Figures(engine, organisation, rollups=False), plans, now=now)
    assert fast == slow
    sz = next(d for d in fast if d.team == "sz-live")
    assert sz.day == day_of(date(2026, 11, 11), "Asia/Shanghai")
    assert set(sz.yesterday) == set(TEAM_METRICS)
    team_gmv = Figures(engine, organisation).figure(
        "gmv", Scope("team", "sz-live"), sz.day, now=now
    )
    assert sz.yesterday["gmv"].figure == team_gmv and team_gmv.value
    # Yesterday's target is 11.11's daily target: three times an ordinary Wednesday's.
    daily = plans.daily_targets(
        "gmv", Scope("team", "sz-live"), [date(2026, 11, d) for d in (4, 11)]
    )
    assert sz.yesterday["gmv"].target == daily[date(2026, 11, 11)] == 3 * daily[date(2026, 11, 4)]
    assert sz.month_to_date.target and sz.month_to_date.target > daily[date(2026, 11, 11)]
    ranked = [r for r in sz.ranking if r.rank is not None]
    assert ranked and ranked == sorted(ranked, key=lambda r: r.rank or 0)
    assert all((d.change or 0) > 0 for _, d in sz.risers)
    assert all((d.change or 0) < 0 for _, d in sz.fallers)
    assert sz.explanation is not None
    explained = sum(d.contribution for d in sz.explanation.drivers) + sz.explanation.unexplained
    assert abs(explained - sz.explanation.change) < Decimal("1e-18")
