"""Plans and targets: daily decomposition, expected-by-now, pace, projection, config checks."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpi_engine.figures import Figure
from kpi_engine.metrics import build_catalogue
from kpi_engine.organisation import check_organisation, load_organisation
from kpi_engine.periods import day_of, month_of, week_of
from kpi_engine.plans import Plan, Target
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans
from tests.conftest import EXAMPLE_CONFIG

TEAM = Scope("team", "sz-live")
TZ = "Asia/Shanghai"
NOVEMBER = month_of(date(2026, 11, 1), TZ)
WEEKDAYS = tuple(Decimal(w) for w in ("0.9", "0.9", "0.95", "0.95", "1.05", "1.15", "1.1"))
PLAN = Plan("h2", date(2026, 7, 1), weekday_weights=WEEKDAYS, promo_days={"11-11": Decimal(3)})


def plans(*extra: Plan, value: str = "4500000") -> Plans:
    target = Target("h2", "gmv", TEAM, NOVEMBER, Decimal(value))
    return Plans([PLAN, *extra], [target], build_catalogue())


def figure(metric: str, value: str | None, period: object) -> Figure:
    unit = "ratio" if metric == "refund_rate" else "money"
    return Figure(
        metric,
        TEAM,
        period,
        None if value is None else Decimal(value),
        unit,  # type: ignore[arg-type]
        "CNY" if unit == "money" else None,
        True,
        None,
    )


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def test_a_month_target_spreads_by_weekday_and_promo_day() -> None:
    daily = plans().daily_targets("gmv", TEAM, NOVEMBER.dates())
    assert sum(daily.values()) == pytest.approx(Decimal(4500000), abs=Decimal("1e-15"))
    # 11.11 is a Wednesday at 0.95 × 3; 2026-11-04 is an ordinary Wednesday.
    assert daily[date(2026, 11, 11)] / daily[date(2026, 11, 4)] == Decimal(3)
    ratio = daily[date(2026, 11, 7)] / daily[date(2026, 11, 2)]
    assert abs(ratio - Decimal("1.15") / Decimal("0.9")) < Decimal("1e-20")


def test_pace_and_projection_with_an_hourly_profile() -> None:
    evening = tuple(Decimal(0) if h < 12 else Decimal(1) for h in range(24))  # sells after noon
    plan = Plan("h2", date(2026, 7, 1), hourly_profile=evening)
    board = Plans([plan], [Target("h2", "gmv", TEAM, NOVEMBER, Decimal(3000))], build_catalogue())
    today = day_of(date(2026, 11, 20), TZ)
    # 18:00 in Shanghai: half of the selling hours have passed.
    progress = board.progress(figure("gmv", "40", today), now=at(2026, 11, 20, 10, 0))
    assert progress.target == 100 and progress.expected == 50
    assert progress.pace == Decimal("0.8") and progress.projection == 80
    assert progress.achievement == Decimal("0.4") and progress.plan == "h2" and not progress.pilot
    morning = board.progress(figure("gmv", "5", today), now=at(2026, 11, 20, 2, 0))  # 10:00
    assert morning.expected == 0 and morning.pace is None  # nothing expected yet: no pace
    week = board.progress(
        figure("gmv", "700", week_of(date(2026, 11, 18), TZ)), now=at(2026, 12, 1)
    )
    assert week.target == 700 and week.pace == 1 and week.achievement == 1


def test_level_targets_and_lower_is_better() -> None:
    board = Plans(
        [PLAN], [Target("h2", "refund_rate", TEAM, NOVEMBER, Decimal("0.04"))], build_catalogue()
    )
    progress = board.progress(figure("refund_rate", "0.05", day_of(date(2026, 11, 20), TZ)), now=0)
    assert progress.target == Decimal("0.04")  # a level: the same on any day of the month
    assert progress.achievement == Decimal("0.8")  # 4 % wanted, 5 % done: 80 %
    assert progress.pace is None and progress.projection is None


def test_the_plan_in_force_each_day_and_pilots() -> None:
    pilot = Plan("pilot", date(2026, 11, 16), pilot=True)  # flat weights from the 16th
    board = plans(pilot)
    assert board.plan_on(date(2026, 11, 15)) == PLAN and board.plan_on(date(2026, 11, 16)) == pilot
    daily = board.daily_targets("gmv", TEAM, NOVEMBER.dates())
    assert daily[date(2026, 11, 21)] == daily[date(2026, 11, 23)]  # Saturday = Monday under pilot
    assert daily[date(2026, 11, 7)] != daily[date(2026, 11, 9)]
    assert board.progress(figure("gmv", "1", day_of(date(2026, 11, 20), TZ)), now=0).pilot
    assert not board.progress(figure("gmv", "1", day_of(date(2026, 11, 10), TZ)), now=0).pilot
    missing = board.progress(figure("orders", "3", day_of(date(2026, 11, 10), TZ)), now=0)
    assert missing.target is None and missing.pace is None


@given(
    st.lists(st.decimals(min_value=0, max_value=5, places=2), min_size=7, max_size=7).filter(
        lambda w: any(w)
    ),
    st.integers(min_value=1, max_value=10**9),
)
def test_daily_targets_always_add_up(weights: list[Decimal], value: int) -> None:
    plan = Plan("p", date(2020, 1, 1), weekday_weights=tuple(weights))
    board = Plans([plan], [Target("p", "gmv", TEAM, NOVEMBER, Decimal(value))], build_catalogue())
    daily = board.daily_targets("gmv", TEAM, NOVEMBER.dates())
    assert abs(sum(daily.values()) - value) <= Decimal(value) * Decimal("1e-20")


def test_example_config_targets() -> None:
    organisation = load_organisation(EXAMPLE_CONFIG)
    assert [p.id for p in organisation.plans] == ["2026-h2"]
    team = next(t for t in organisation.targets if t.scope == TEAM and t.metric == "gmv")
    assert team.value == 4500000 and team.period == NOVEMBER


def test_target_config_errors(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    text = kpis.read_text(encoding="utf-8")
    text = text.replace(
        "entity: person:liu.yang, period: 2026-11", "entity: person:liu.yang, period: this_month"
    )
    text = text.replace(
        "metric: refund_rate, entity: team:sz-live", "metric: refund_rat, entity: team:sz-live"
    )
    text = text.replace(
        "{plan: 2026-h2, metric: gmv, entity: team:la-ops",
        "{plan: 2026-h3, metric: gmv, entity: team:la-ops",
    )
    text = text.replace("entity: person:jessica.lee", "entity: person:jessica")
    kpis.write_text(text, encoding="utf-8")
    organisation, problems = check_organisation(config)
    assert organisation is None
    found = {(p.path, p.message, p.hint) for p in problems}
    assert (
        "targets[4].period",
        "'this_month' moves with time; a target needs a fixed period",
        "use 2026-11, 2026-W47, 2026-11-20 or 2026-11-01..2026-11-15",
    ) in found
    assert (
        "targets[5].metric",
        "unknown metric 'refund_rat'",
        "did you mean 'refund_rate'?",
    ) in found
    assert ("targets[8].plan", "unknown plan '2026-h3'", "did you mean '2026-h2'?") in found
    assert ("targets[9].entity", "unknown person 'jessica'", None) in found
    # Without liu.yang's target the members no longer add up to the team's: a warning.
    assert any(
        p.severity == "warning"
        and p.path == "targets[0].value"
        and "differs from the sum of its members' targets, 3800000" in p.message
        for p in problems
    )


def test_targets_from_a_spreadsheet(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    (config / "targets-2026-12.csv").write_text(
        "plan,metric,entity,period,value\n"
        "2026-h2,gmv,person:li.na,2026-12,1800000\n"
        "2026-h2,orders,shop:amz-jp-01,2026-12,9000\n",
        encoding="utf-8",
    )
    organisation = load_organisation(config)
    december = [t for t in organisation.targets if t.period.first == date(2026, 12, 1)]
    assert {(t.metric, t.scope.id, t.value) for t in december} == {
        ("gmv", "li.na", Decimal(1800000)),
        ("orders", "amz-jp-01", Decimal(9000)),
    }
    assert december[1].period.timezone == "Asia/Tokyo"  # a shop's period is in the shop's zone

    (config / "targets-bad.csv").write_text(
        "plan,metric,entity,period,value\n"
        "2026-h2,gmv,person:li.na,2026-12,1800000\n"
        "2026-h2,gvm,person:li.na,2026-12,1800000\n"
        "2026-h2,gmv,person:li.na,2026-12,lots\n",
        encoding="utf-8",
    )
    _, problems = check_organisation(config)
    located = {
        (Path(p.file).name, p.line, p.path, p.message) for p in problems if p.severity == "error"
    }
    assert ("targets-bad.csv", 3, "targets[1].metric", "unknown metric 'gvm'") in located
    assert any(
        f == "targets-bad.csv" and line == 4 and path == "targets[2].value"
        for f, line, path, _ in located
    )


def test_a_broken_plan_is_reported_once(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    text = kpis.read_text(encoding="utf-8")
    kpis.write_text(
        text.replace(
            "weekday_weights: [0.9, 0.9, 0.95, 0.95, 1.05, 1.15, 1.1]",
            "weekday_weights: [1, 1]\n    hourly_profile: [0, 0]",
        ),
        encoding="utf-8",
    )
    _, problems = check_organisation(config)
    assert [(p.path, p.message) for p in problems if p.severity == "error"] == [
        ("plans[0].weekday_weights", "needs 7 weights ≥ 0 (Monday … Sunday), not all 0"),
        ("plans[0].hourly_profile", "needs 24 weights ≥ 0 (00:00 … 23:00), not all 0"),
    ]


def test_a_hosts_target_follows_their_live_schedule() -> None:
    host = Scope("person", "li.na")
    scheduled = Plan(
        "h2",
        date(2026, 7, 1),
        weekday_weights=WEEKDAYS,
        promo_days={"11-11": Decimal(3)},
        live_days={"li.na": frozenset({1, 2, 3, 4, 5, 6})},  # Mondays off
        off_day_weight=Decimal("0.2"),
    )
    targets = [
        Target("h2", "gmv", host, NOVEMBER, Decimal(1500000)),
        Target("h2", "gmv", TEAM, NOVEMBER, Decimal(4500000)),
    ]
    found = Plans([scheduled], targets, build_catalogue())
    daily = found.daily_targets("gmv", host, NOVEMBER.dates())
    assert sum(daily.values()) == pytest.approx(Decimal(1500000), abs=Decimal("1e-15"))
    # Monday 2026-11-09 is an off day: 0.2 of its weekday weight; Tuesday the 10th is live.
    monday, tuesday = daily[date(2026, 11, 9)], daily[date(2026, 11, 10)]
    assert abs(monday / tuesday - Decimal("0.2")) < Decimal("1e-20")  # both weigh 0.9
    # The team, with no schedule, keeps plain weekday weights.
    team = found.daily_targets("gmv", TEAM, NOVEMBER.dates())
    assert team[date(2026, 11, 9)] == team[date(2026, 11, 10)]


def test_the_example_plan_schedules_its_hosts() -> None:
    organisation = load_organisation(EXAMPLE_CONFIG)
    plan = organisation.plans[0]
    assert plan.live_days is not None and plan.live_days["li.na"] == frozenset(range(1, 7))
    assert plan.day_weight(date(2026, 11, 9), Scope("person", "li.na")) == Decimal("0.9") * Decimal(
        "0.2"
    )
    assert plan.day_weight(date(2026, 11, 9), Scope("person", "zhang.wei")) == Decimal("0.9")


@pytest.mark.parametrize(
    ("schedule", "path", "message"),
    [
        (
            "li.nna: [mon]",
            "plans[0].live_schedule.hosts.li.nna",
            "unknown person 'li.nna'",
        ),
        (
            "li.na: [mon, thurs]",
            "plans[0].live_schedule.hosts",
            "li.na: 'thurs' is not a weekday (did you mean 'thu'?)",
        ),
    ],
)
def test_a_broken_live_schedule_is_located(
    tmp_path: Path, schedule: str, path: str, message: str
) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    text = kpis.read_text(encoding="utf-8")
    kpis.write_text(
        text.replace("li.na: [tue, wed, thu, fri, sat, sun]", schedule), encoding="utf-8"
    )
    _, problems = check_organisation(config)
    errors = [(p.path, p.message) for p in problems if p.severity == "error"]
    assert len(errors) == 1 and errors[0][0] == path and message in errors[0][1], errors
