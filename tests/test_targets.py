"""Plans and targets: daily decomposition, expected-by-now, pace, projection, config checks."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli import app
from bot.queries import resolve
from kpi_engine.figures import Figure
from kpi_engine.metrics import build_catalogue
from kpi_engine.organisation import check_organisation, load_organisation
from kpi_engine.periods import day_of, month_of, week_of
from kpi_engine.plans import Plan, Recurrence, Step, Target
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


def test_no_pace_while_less_than_three_percent_of_the_target_is_expected() -> None:
    flat = Plan("h2", date(2026, 7, 1))  # every hour sells alike: 1/24 of a day per hour
    board = Plans([flat], [Target("h2", "gmv", TEAM, NOVEMBER, Decimal(3000))], build_catalogue())
    today = day_of(date(2026, 11, 20), TZ)  # its target: 100
    # 00:30 in Shanghai: 100 × 0.5/24 ≈ 2.08 expected (2.1 % of the target), 17 sold — a pace
    # of 816 %, from a handful of orders. Not stated.
    early = board.progress(figure("gmv", "17", today), now=at(2026, 11, 19, 16, 30))
    assert early.expected is not None and early.expected < 3
    assert early.early and early.pace is None and early.projection is None
    assert early.achievement == Decimal("0.17")  # what was sold is still stated
    # 01:00: 100/24 ≈ 4.17 expected (4.2 %): now it is.
    later = board.progress(figure("gmv", "17", today), now=at(2026, 11, 19, 17, 0))
    assert not later.early and later.pace == Decimal(17) / (Decimal(100) / 24)
    # A month on its first morning: 3000 × (9/24)/30 = 37.5 expected (1.25 %).
    month = board.progress(figure("gmv", "900", NOVEMBER), now=at(2026, 11, 1, 1, 0))
    assert month.early and month.pace is None


def test_level_targets_and_lower_is_better() -> None:
    board = Plans(
        [PLAN], [Target("h2", "refund_rate", TEAM, NOVEMBER, Decimal("0.04"))], build_catalogue()
    )
    progress = board.progress(figure("refund_rate", "0.05", day_of(date(2026, 11, 20), TZ)), now=0)
    assert progress.target == Decimal("0.04")  # a level: the same on any day of the month
    assert progress.achievement == Decimal("0.8")  # 4 % wanted, 5 % done: 80 %
    assert progress.pace is None and progress.projection is None and not progress.beyond
    none_back = board.progress(figure("refund_rate", "0", day_of(date(2026, 11, 20), TZ)), now=0)
    assert none_back.beyond and none_back.achievement is None  # 0.04 ÷ 0 is no number


def test_the_plan_in_force_each_day_and_pilots() -> None:
    pilot = Plan("pilot", date(2026, 11, 16), pilot=True)  # flat weights from the 16th
    board = Plans(
        [PLAN, pilot],
        [
            Target("h2", "gmv", TEAM, NOVEMBER, Decimal(1200000)),
            Target("pilot", "gmv", TEAM, NOVEMBER, Decimal(1000000)),
        ],
        build_catalogue(),
    )
    assert board.plan_on(date(2026, 11, 15)) == PLAN and board.plan_on(date(2026, 11, 16)) == pilot
    assert board.plan_on(date(2026, 6, 30)) is None
    daily = board.daily_targets("gmv", TEAM, NOVEMBER.dates())
    assert daily[date(2026, 11, 21)] == daily[date(2026, 11, 23)]  # Saturday = Monday under pilot
    assert daily[date(2026, 11, 7)] != daily[date(2026, 11, 9)]
    # Each plan's target counts only on the days that plan governs, spread by its own weights:
    # h2's weights add up to 17.0 over 1–15 November and 31.9 over the month (four weeks of
    # 7.0, Sunday the 1st at 1.1, Monday the 30th at 0.9, and 11.11, a Wednesday at 0.95, is
    # 2.85 with its promo ×3); the pilot's flat ones give 15 of 30 days.
    # 1,200,000 × 17 / 31.9 + 1,000,000 × 15 / 30 — never 2,200,000.
    line = board.target_of("gmv", TEAM, NOVEMBER)
    expected = Decimal(1200000) * 17 / Decimal("31.9") + 500000
    assert line is not None and abs(line.value - expected) < Decimal("1e-18")
    assert daily[date(2026, 11, 20)] == Decimal(1000000) / 30
    assert board.progress(figure("gmv", "1", day_of(date(2026, 11, 20), TZ)), now=0).pilot
    assert not board.progress(figure("gmv", "1", day_of(date(2026, 11, 10), TZ)), now=0).pilot
    missing = board.progress(figure("orders", "3", day_of(date(2026, 11, 10), TZ)), now=0)
    assert missing.target is None and missing.pace is None


def test_an_old_plans_recurring_target_stops_when_a_new_plan_starts() -> None:
    new = Plan("2027", date(2027, 1, 1))
    old_target = recurring("3100000")  # plan "flat", every month from July 2026
    new_target = Target("2027", "gmv", TEAM, month_of(date(2027, 1, 1), TZ), Decimal(900000))
    board = Plans([FLAT, new], [old_target, new_target], build_catalogue())
    assert month_target(board, 2026, 12) == Decimal(3100000)
    assert month_target(board, 2027, 1) == Decimal(900000)  # not 3,100,000 + 900,000
    assert month_target(board, 2027, 2) is None  # the new plan has no target for February


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
    assert team.recurrence is not None and team.recurrence.every == "month"
    assert team.recurrence.start == date(2026, 7, 1) and team.recurrence.until is None
    board = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    # November 2026 is exactly as it was configured before targets recurred; any later month
    # (here: one far off, and 29 February 2028's) has the same targets.
    for day in (date(2026, 11, 1), date(2026, 12, 1), date(2028, 2, 29), date(2031, 5, 1)):
        line = board.target_of("gmv", TEAM, month_of(day, TZ))
        assert line is not None and line.value == 4500000 and line.sources == (team,)
    li_na = Scope("person", "li.na")
    expected = {"gmv": Decimal(1500000), "refund_rate": Decimal("0.04"), "avg_watch_seconds": 90}
    for metric, value in expected.items():
        line = board.target_of(metric, li_na, NOVEMBER)
        assert line is not None and line.value == value
    assert board.target_of("gmv", TEAM, month_of(date(2026, 6, 1), TZ)) is None  # before July


def test_target_config_errors(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    text = kpis.read_text(encoding="utf-8")
    text = text.replace(
        "entity: person:liu.yang, every: month, from: 2026-07",
        "entity: person:liu.yang, period: this_month",
    )
    text = text.replace(
        "metric: refund_rate, entity: team:sz-live", "metric: refund_rat, entity: team:sz-live"
    )
    text = text.replace(
        "{plan: 2026-h2, metric: gmv, entity: team:la-ops",
        "{plan: 2026-h3, metric: gmv, entity: team:la-ops",
    )
    text = text.replace("entity: person:jessica.lee", "entity: person:jessica")
    text = text.replace(
        "entity: person:marcus.brown, every: month, from: 2026-07",
        "entity: person:marcus.brown, every: month, from: last_month, until: 2026-13",
    )
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
    assert (
        "targets[10].from",
        "'last_month' moves with time; a target needs a fixed period",
        "use 2026-11, 2026-W47, 2026-11-20 or 2026-11-01..2026-11-15",
    ) in found
    assert ("targets[10].until", "'2026-13' is not a month", None) in found
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


# Recurring targets (docs/metrics.md, "Recurring targets"). Flat weights keep the expected
# values easy to compute by hand: every day of an occurrence weighs the same.
FLAT = Plan("flat", date(2026, 1, 1))
ORDERS = "orders"


def recurring(
    value: str,
    every: str = "month",
    start: date = date(2026, 7, 1),
    *,
    until: date | None = None,
    step: Step | None = None,
    metric: str = "gmv",
    quantum: str = "0.01",
) -> Target:
    rule = Recurrence(every, start, until, step, Decimal(quantum))  # type: ignore[arg-type]
    return Target("flat", metric, TEAM, rule.period_of(start, TZ), Decimal(value), rule)


def month_target(board: Plans, year: int, month: int, metric: str = "gmv") -> Decimal | None:
    line = board.target_of(metric, TEAM, month_of(date(year, month, 1), TZ))
    return None if line is None else line.value


def test_a_monthly_target_repeats_and_steps_up_compounding() -> None:
    board = Plans([FLAT], [recurring("1000000", step=Step(percent=Decimal(5)))], build_catalogue())
    assert month_target(board, 2026, 6) is None  # before it starts
    assert month_target(board, 2026, 7) == Decimal(1000000)
    # 1.05^4 = 1.21550625; 1.05^5 = 1.2762815625, rounded half up to the cent;
    # 1.05^11 = 1.71033936...; 1,710,339.36 to the cent.
    assert month_target(board, 2026, 11) == Decimal("1215506.25")
    assert month_target(board, 2026, 12) == Decimal("1276281.56")
    assert month_target(board, 2027, 6) == Decimal("1710339.36")
    # Compounding is from the configured value, not from the rounded previous month.
    down = Plans(
        [FLAT],
        [
            recurring(
                "0.04", step=Step(percent=Decimal(-10)), metric="refund_rate", quantum="0.000001"
            )
        ],
        build_catalogue(),
    )
    assert month_target(down, 2026, 11, "refund_rate") == Decimal("0.026244")  # 0.04 × 0.9^4


def test_an_explicit_target_overrides_the_recurring_one_for_its_days() -> None:
    explicit = Target("flat", "gmv", TEAM, NOVEMBER, Decimal(2000000))
    week = Target("flat", "gmv", TEAM, week_of(date(2026, 12, 16), TZ), Decimal(1000000))
    board = Plans([FLAT], [recurring("3100000"), explicit, week], build_catalogue())
    assert month_target(board, 2026, 10) == Decimal(3100000)
    assert month_target(board, 2026, 11) == Decimal(2000000)  # replaced, never added
    # December: 31 days at 100,000 each, but 14–20 December take the week's 1,000,000.
    assert month_target(board, 2026, 12) == Decimal(24 * 100000 + 1000000)
    daily = board.daily_targets("gmv", TEAM, [date(2026, 12, 13), date(2026, 12, 14)])
    assert daily[date(2026, 12, 13)] == 100000
    assert abs(daily[date(2026, 12, 14)] - Decimal(1000000) / 7) < Decimal("1e-20")
    line = board.target_of("gmv", TEAM, month_of(date(2026, 12, 1), TZ))
    assert line is not None and set(line.sources) == {board.targets[0], week}


def test_weekly_and_daily_targets_with_an_end_and_an_added_step() -> None:
    weekly = recurring(
        "5000",
        "week",
        date(2026, 11, 2),
        until=date(2026, 11, 22),
        step=Step(amount=Decimal(1000)),
        metric=ORDERS,
        quantum="1",
    )
    board = Plans([FLAT], [weekly], build_catalogue())
    # Weeks of 2, 9 and 16 November: 5,000, 6,000, 7,000; nothing on 1 November (before the
    # start) nor after the 22nd.
    assert month_target(board, 2026, 11, ORDERS) == Decimal(18000)
    week = board.target_of(ORDERS, TEAM, week_of(date(2026, 11, 18), TZ))
    assert week is not None and week.value == 7000
    assert board.target_of(ORDERS, TEAM, week_of(date(2026, 11, 25), TZ)) is None
    daily = Plans(
        [FLAT], [recurring("120", "day", date(2026, 11, 1), metric=ORDERS)], build_catalogue()
    )
    week_line = daily.target_of(ORDERS, TEAM, week_of(date(2026, 11, 18), TZ))
    assert week_line is not None and week_line.value == 840


def test_a_target_starting_mid_month_counts_for_its_days() -> None:
    board = Plans([FLAT], [recurring("3000000", start=date(2026, 11, 16))], build_catalogue())
    assert month_target(board, 2026, 11) == Decimal(1500000)  # 15 of November's 30 days
    assert month_target(board, 2026, 12) == Decimal(3000000)
    progress = board.progress(figure("gmv", "100000", day_of(date(2026, 11, 10), TZ)), now=0)
    assert progress.target is None


def test_recurring_targets_in_config_and_spreadsheets(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    (config / "targets-orders.csv").write_text(
        "plan,metric,entity,every,from,until,step,value\n"
        "2026-h2,orders,shop:amz-jp-01,month,2026-09,2027-06,+2%,9000\n"
        "2026-h2,ad_spend,team:la-ops,week,2026-W45,,-5%,1000\n"
        "2026-h2,gmv,shop:amz-jp-01,month,,,+3%,5000001\n",
        encoding="utf-8",
    )
    organisation = load_organisation(config)
    board = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    shop = Scope("shop", "amz-jp-01")
    tokyo_november = month_of(date(2026, 11, 1), "Asia/Tokyo")
    line = board.target_of("orders", shop, tokyo_november)
    assert line is not None and line.value == 9364  # 9000 × 1.02², 9363.6 to a whole order
    assert board.target_of("orders", shop, month_of(date(2027, 7, 1), "Asia/Tokyo")) is None
    # A yen target steps to whole yen: 5,000,001 × 1.03⁴ = 5,627,545.2255… → 5,627,545.
    yen = board.target_of("gmv", shop, tokyo_november)
    assert yen is not None and yen.value == Decimal(5627545)
    la = next(t for t in organisation.targets if t.metric == "ad_spend")
    assert la.recurrence is not None and la.recurrence.start == date(2026, 11, 2)


@pytest.mark.parametrize(
    ("entry", "path", "message"),
    [
        (
            "{plan: 2026-h2, metric: gmv, entity: company, period: 2026-11, every: month, value: 1}",
            "targets[11]",
            "give either period (a fixed period) or every (day, week, month)",
        ),
        (
            "{plan: 2026-h2, metric: gmv, entity: company, value: 1}",
            "targets[11]",
            "give either period (a fixed period) or every (day, week, month)",
        ),
        (
            "{plan: 2026-h2, metric: gmv, entity: company, period: 2026-11, step: +5%, value: 1}",
            "targets[11]",
            "from, until and step go with every (a recurring target)",
        ),
        (
            "{plan: 2026-h2, metric: gmv, entity: company, every: month, step: 5 percent, value: 1}",
            "targets[11]",
            "step '5 percent' is not +5% or an amount such as +50000",
        ),
        (
            "{plan: 2026-h2, metric: gmv, entity: company, every: year, value: 1}",
            "targets[11].every",
            "Input should be 'day', 'week' or 'month'",
        ),
        (
            "{plan: 2026-h2, metric: gmv, entity: company, every: month, from: 2026-09,"
            " until: 2026-08, value: 1}",
            "targets[11].until",
            "the target ends before it starts",
        ),
    ],
)
def test_recurring_target_errors_are_located(
    tmp_path: Path, entry: str, path: str, message: str
) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    text = kpis.read_text(encoding="utf-8")
    anchor = "value: 200000}\n"
    kpis.write_text(text.replace(anchor, f"{anchor}  - {entry}\n"), encoding="utf-8")
    _, problems = check_organisation(config)
    errors = [(p.path, p.message, p.line) for p in problems if p.severity == "error"]
    line = next(i for i, row in enumerate(kpis.read_text().splitlines(), 1) if entry[:60] in row)
    assert errors == [(path, message, line)], errors


def test_config_check_shows_the_targets_of_a_month(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    (config / "targets-december.csv").write_text(
        "plan,metric,entity,period,value\n2026-h2,gmv,person:li.na,2026-12,1800000\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["config", "check", str(config), "--month", "2026-12"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Targets in 2026-12 (21):" in lines  # 11 own, 10 role-wide defaults (5 people × 2)
    assert any(line.startswith("  (5 people)           refund_rate") for line in lines)
    li_na = next(line for line in lines if line.startswith("  person:li.na") and " gmv " in line)
    assert "1,800,000.00 CNY" in li_na and "2026-12 (plan 2026-h2)" in li_na
    team = next(line for line in lines if line.startswith("  team:la-ops"))
    assert "420,000.00 USD" in team and "every month from 2026-07-01 (plan 2026-h2)" in team
    june = CliRunner().invoke(app, ["config", "check", str(config), "--month", "2026-06"])
    assert "Targets in 2026-06 (0):" in june.output
    bad = CliRunner().invoke(app, ["config", "check", str(config), "--month", "June"])
    assert bad.exit_code == 2


def test_duplicate_targets_are_a_located_error_never_a_sum(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    kpis.write_text(
        kpis.read_text(encoding="utf-8").replace(
            "value: 200000}\n",
            "value: 200000}\n"
            "  - {plan: 2026-h2, metric: gmv, entity: person:li.na, period: 2026-12, value: 220000}\n",
        ),
        encoding="utf-8",
    )
    (config / "targets-december.csv").write_text(
        "plan,metric,entity,period,every,from,value\n"
        "2026-h2,gmv,person:li.na,2026-12,,,90000\n"
        "2026-h2,gmv,team:la-ops,,month,2026-10,500000\n",
        encoding="utf-8",
    )
    organisation, problems = check_organisation(config)
    assert organisation is None
    yaml_line = next(
        i
        for i, row in enumerate(kpis.read_text().splitlines(), 1)
        if "li.na, period: 2026-12" in row
    )
    la_line = next(
        i for i, row in enumerate(kpis.read_text().splitlines(), 1) if "team:la-ops" in row
    )
    errors = [
        (Path(p.file).name, p.line, p.path, p.message, p.hint)
        for p in problems
        if p.severity == "error"
    ]
    assert errors == [
        (
            "targets-december.csv",
            2,
            "targets[0]",
            "a second gmv target for person:li.na in 2026-12 under plan '2026-h2'",
            f"first given at {kpis}:{yaml_line}; keep one (targets are never added up)",
        ),
        (
            "targets-december.csv",
            3,
            "targets[1]",
            "a second gmv target for team:la-ops in every month from 2026-10-01 under plan "
            "'2026-h2'",
            f"first given at {kpis}:{la_line}; keep one (targets are never added up)",
        ),
    ]


def test_old_and_new_plan_targets_for_one_month_never_add_up(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    text = kpis.read_text(encoding="utf-8")
    kpis.write_text(
        text.replace("plans:\n", "plans:\n  - {id: 2026-nov, effective_from: 2026-11-16}\n"),
        encoding="utf-8",
    )
    (config / "targets-new-plan.csv").write_text(
        "plan,metric,entity,period,value\n"
        "2026-nov,gmv,team:sz-live,2026-11,1000000\n"
        "2026-h2,gmv,team:sz-live,2026-12,2000000\n",  # after 2026-h2 ends: never applies
        encoding="utf-8",
    )
    organisation, problems = check_organisation(config)
    assert organisation is not None, problems
    [never] = [p for p in problems if "never applies" in p.message]
    assert (Path(never.file).name, never.line) == ("targets-new-plan.csv", 3)
    assert never.message == (
        "never applies: plan '2026-h2' is in force 2026-07-01…2026-11-15, outside the target's days"
    )
    board = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    # 2026-h2's recurring 4,500,000 counts for 1–15 November by its own weights (17.0 of the
    # month's 31.9, 11.11 tripled by the calendar), the new flat plan's 1,000,000 for 15 of its
    # 32 (30 days, 11.11 tripled: the calendar weighs days under every plan).
    expected = Decimal(4500000) * 17 / Decimal("31.9") + Decimal(1000000) * 15 / 32
    line = board.target_of("gmv", TEAM, NOVEMBER)
    assert line is not None and abs(line.value - expected) < Decimal("1e-18")
    december = board.target_of("gmv", TEAM, month_of(date(2026, 12, 1), TZ))
    assert december is None  # the new plan has no December target; the old plan's are over


# Role-wide default targets and new hires' ramp (docs/metrics.md, "Role-wide targets").


def with_new_hires(tmp_path: Path, extra_targets: str = "") -> Path:
    """The example plus a new streamer in Shenzhen hired on 18 November 2026, one in LA with
    no hire date, and role-wide GMV targets: 900,000 for sz-live's streamers, 500,000 for the
    company's."""
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    people = config / "people.yaml"
    people.write_text(
        people.read_text(encoding="utf-8")
        + "  - {id: new.host, name: 新主播, role: streamer, team: sz-live, manager: wang.fang,"
        " hired: 2026-11-18}\n"
        "  - {id: new.la, name: New LA, role: streamer, team: la-ops, manager: emily.carter}\n",
        encoding="utf-8",
    )
    kpis = config / "kpis.yaml"
    kpis.write_text(
        kpis.read_text(encoding="utf-8").replace(
            "\ncalendar:\n",
            "\n  - {plan: 2026-h2, metric: gmv, entity: role:streamer, team: sz-live, every: month,"
            " value: 900000}\n"
            "  - {plan: 2026-h2, metric: gmv, entity: role:streamer, every: month, value: 500000}\n"
            + extra_targets
            + "calendar:\n",
        ),
        encoding="utf-8",
    )
    return config


def test_role_wide_targets_are_defaults_under_each_persons_own(tmp_path: Path) -> None:
    organisation = load_organisation(with_new_hires(tmp_path))
    board = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    december = month_of(date(2026, 12, 1), TZ)

    def gmv(person: str, tz: str = TZ) -> Decimal | None:
        line = board.target_of("gmv", Scope("person", person), month_of(date(2027, 3, 1), tz))
        return None if line is None else line.value

    assert gmv("li.na") == 1500000  # her own target, not a default
    assert gmv("new.host") == 900000  # the team's default over the company's
    assert gmv("new.la", "America/Los_Angeles") == 500000  # the company's default
    line = board.target_of("gmv", Scope("person", "new.la"), december)
    assert line is not None and line.sources[0].label() == (
        "role:streamer: every month from 2026-07-01"
    )
    # An own target for one month overrides the default that month only.
    own = load_organisation(
        with_new_hires(
            tmp_path / "own",
            "  - {plan: 2026-h2, metric: gmv, entity: person:new.la, period: 2027-03,"
            " value: 123}\n",
        )
    )
    other = Plans(own.plans, own.targets, own.catalogue)
    march = other.target_of("gmv", Scope("person", "new.la"), month_of(date(2027, 3, 1), LA))
    april = other.target_of("gmv", Scope("person", "new.la"), month_of(date(2027, 4, 1), LA))
    assert march is not None and march.value == 123
    assert april is not None and april.value == 500000


LA = "America/Los_Angeles"
# The example plan's weights, Monday … Sunday, and its calendar for Shenzhen (11.11 ×3, 12.12 ×2).
WEIGHTS = [Decimal(w) for w in ("0.9", "0.9", "0.95", "0.95", "1.05", "1.15", "1.1")]
SZ_EVENTS = {(11, 11): Decimal(3), (12, 12): Decimal(2)}


def weight(day: date) -> Decimal:
    return WEIGHTS[day.weekday()] * SZ_EVENTS.get((day.month, day.day), Decimal(1))


def test_a_new_hire_ramps_up_from_the_hire_date(tmp_path: Path) -> None:
    organisation = load_organisation(with_new_hires(tmp_path))
    board = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    host = Scope("person", "new.host")

    # Month of service 1 is 18 November – 17 December (60 %), month 2 is 18 December –
    # 17 January (80 %), then the whole target; nothing before the hire date.
    def ramp(day: date) -> Decimal:
        if day < date(2026, 11, 18):
            return Decimal(0)
        if day < date(2026, 12, 18):
            return Decimal("0.6")
        return Decimal("0.8") if day < date(2027, 1, 18) else Decimal(1)

    for month in (date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1)):
        period = month_of(month, TZ)
        total = sum((weight(d) for d in period.dates()), Decimal(0))
        expected = sum(
            (Decimal(900000) * weight(d) / total * ramp(d) for d in period.dates()), Decimal(0)
        )
        line = board.target_of("gmv", host, period)
        assert line is not None and abs(line.value - expected) < Decimal("1e-15"), month
    # Two weeks in (1 December, a Tuesday): today's target is at the first step, 60 %.
    december_total = Decimal("31.95")  # 4 weeks of 7.0 + Tue, Wed, Thu 2.8 + 12.12's extra 1.15
    today = board.daily_targets("gmv", host, [date(2026, 12, 1)])[date(2026, 12, 1)]
    assert abs(
        today - Decimal(900000) * Decimal("0.9") / december_total * Decimal("0.6")
    ) < Decimal("1e-18")
    assert board.daily_targets("gmv", host, [date(2026, 11, 17)]) == {}  # not hired yet


def test_role_wide_target_errors(tmp_path: Path) -> None:
    config = with_new_hires(
        tmp_path,
        "  - {plan: 2026-h2, metric: gmv, entity: role:streamr, every: month, value: 1}\n"
        "  - {plan: 2026-h2, metric: gmv, entity: role:streamer, team: sz-lve, every: month,"
        " value: 1}\n"
        "  - {plan: 2026-h2, metric: gmv, entity: person:li.na, team: sz-live, every: month,"
        " value: 1}\n"
        "  - {plan: 2026-h2, metric: gmv, entity: role:streamer, every: month, from: 2026-09,"
        " value: 2}\n"
        "  - {plan: 2026-h2, metric: orders, entity: role:editor, team: la-ops, every: month,"
        " value: 2}\n",
    )
    _, problems = check_organisation(config)
    found = {(p.severity, p.path, p.message, p.hint) for p in problems}
    assert (
        "error",
        "targets[15].entity",
        "unknown role 'streamr'",
        "did you mean 'streamer'?",
    ) in found
    assert (
        "error",
        "targets[16].team",
        "unknown team 'sz-lve'",
        "did you mean 'sz-live'?",
    ) in found
    assert (
        "error",
        "targets[17].team",
        "team goes with a role-wide target (entity: role:<role>)",
        None,
    ) in found
    # A second company-wide streamer default: one error, not one per streamer.
    duplicates = [p for p in problems if p.path == "targets[18]"]
    assert len(duplicates) == 1 and duplicates[0].message.startswith(
        "a second gmv target for person:"
    )
    assert (
        "warning",
        "targets[19].entity",
        "nobody has the role 'editor' in team 'la-ops'",
        None,
    ) in found


def test_ramp_and_black_friday_through_the_database(engine: Engine, tmp_path: Path) -> None:
    """What `kpibot report` and chat answers read: a figure from the database beside its
    target, on SQLite and PostgreSQL."""
    organisation = load_organisation(with_new_hires(tmp_path))
    two_weeks_in = int(datetime(2026, 12, 1, 20, tzinfo=ZoneInfo(TZ)).timestamp())
    query = resolve(engine, organisation, "person:new.host", "today", now=two_weeks_in)
    figure = query.figures.figure("gmv", query.scope, query.period, now=two_weeks_in)
    progress = query.plans.progress(figure, two_weeks_in)
    first_step = Decimal(900000) * Decimal("0.9") / Decimal("31.95") * Decimal("0.6")
    assert progress.target is not None and abs(progress.target - first_step) < Decimal("1e-18")
    assert figure.value == 0 and progress.achievement == 0
    friday = int(datetime(2026, 11, 27, 20, tzinfo=ZoneInfo(LA)).timestamp())
    query = resolve(engine, organisation, "team:la-ops", "today", now=friday)
    figure = query.figures.figure("gmv", query.scope, query.period, now=friday)
    progress = query.plans.progress(figure, friday)
    black_friday = Decimal(420000) * Decimal("2.1") / Decimal("33.4")  # docs: 1.05 × 2 of 33.4
    assert progress.target is not None and abs(progress.target - black_friday) < Decimal("1e-18")


def test_which_targets_are_spread_over_days() -> None:
    board = Plans([FLAT], [], build_catalogue())
    assert [board.additive(m) for m in ("gmv", "orders", "watch_seconds", "net_gmv")] == [True] * 4
    levels = ("aov", "avg_watch_seconds", "live_gpm", "refund_rate", "roas", "acos", "nope")
    assert [board.additive(m) for m in levels] == [False] * len(levels)
    # An average's target (90 s of watch time, 250 of AOV) holds on any day, not a 30th of it.
    watch = Target("flat", "avg_watch_seconds", TEAM, NOVEMBER, Decimal(90))
    one_day = Plans([FLAT], [watch], build_catalogue()).target_of(
        "avg_watch_seconds", TEAM, day_of(date(2026, 11, 20), TZ)
    )
    assert one_day is not None and one_day.value == 90
