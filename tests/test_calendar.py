"""The dated calendar: events weigh days when targets are spread, and make alert rules
stricter or suspend them (docs/metrics.md, "The calendar")."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from bot.features.digests.render import Digests
from kpi_engine.alerts import observe
from kpi_engine.calendar import CalendarEvent, alert_behaviour, day_weight, events_on
from kpi_engine.digest import team_digest
from kpi_engine.figures import Figures
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.metrics import build_catalogue
from kpi_engine.organisation import (
    AlertCondition,
    AlertRuleConfig,
    Organisation,
    check_organisation,
    load_organisation,
)
from kpi_engine.periods import day_of, month_of
from kpi_engine.plans import Plan, Target
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans
from tests.conftest import EXAMPLE_CONFIG

LA = "America/Los_Angeles"
LA_OPS = Scope("team", "la-ops")
SZ_LIVE = Scope("team", "sz-live")
# The example plan's weekday weights, Monday … Sunday (config/example/kpis.yaml).
WEEKDAY = [Decimal(w) for w in ("0.9", "0.9", "0.95", "0.95", "1.05", "1.15", "1.1")]


def example_weight(day: date, events: dict[date, Decimal]) -> Decimal:
    return WEEKDAY[day.weekday()] * events.get(day, Decimal(1))


def test_black_fridays_daily_target_carries_its_weight() -> None:
    organisation = load_organisation(EXAMPLE_CONFIG)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    november = month_of(date(2026, 11, 1), LA)
    # For la-ops: 11.11 ×3 (every team), Black Friday (27th) ×2, Cyber Monday (30th) ×1.5.
    la_events = {
        date(2026, 11, 11): Decimal(3),
        date(2026, 11, 27): Decimal(2),
        date(2026, 11, 30): Decimal("1.5"),
    }
    total = sum((example_weight(d, la_events) for d in november.dates()), Decimal(0))
    assert total == Decimal("33.4")  # 30.0 of weekdays + 1.9 + 1.05 + 0.45
    daily = plans.daily_targets("gmv", LA_OPS, november.dates())
    black_friday = Decimal(420000) * Decimal("2.10") / total
    assert abs(daily[date(2026, 11, 27)] - black_friday) < Decimal("1e-18")
    assert abs(daily[date(2026, 11, 20)] * 2 - daily[date(2026, 11, 27)]) < Decimal("1e-18")
    line = plans.target_of("gmv", LA_OPS, november)
    assert line is not None and line.value == 420000  # the month's target is unchanged
    # Shenzhen has no Black Friday: its Friday the 27th weighs like the 20th.
    sz = plans.daily_targets("gmv", SZ_LIVE, [date(2026, 11, 20), date(2026, 11, 27)])
    assert sz[date(2026, 11, 20)] == sz[date(2026, 11, 27)]
    # A person of the team is covered too (jessica.lee is in la-ops).
    jessica = plans.daily_targets("gmv", Scope("person", "jessica.lee"), november.dates())
    assert jessica[date(2026, 11, 27)] > jessica[date(2026, 11, 20)]


def test_a_holiday_lowers_a_days_weight_and_yearly_events_wrap() -> None:
    spring = CalendarEvent(
        "春节",
        date(2027, 2, 6),
        date(2027, 2, 12),
        scopes=frozenset({SZ_LIVE}),
        kind="holiday",
        weight=Decimal("0.3"),
    )
    new_year = CalendarEvent("New Year", yearly=("12-30", "01-02"), weight=Decimal("0.5"))
    assert [new_year.on(date(2027, m, d)) for m, d in ((12, 29), (12, 30), (1, 2), (1, 3))] == [
        False,
        True,
        True,
        False,
    ]
    plan = Plan("p", date(2027, 1, 1), events=(spring, new_year))
    february = month_of(date(2027, 2, 1), "Asia/Shanghai")
    board = Plans([plan], [Target("p", "gmv", SZ_LIVE, february, Decimal(2310))], build_catalogue())
    # 28 days, 7 of them at 0.3: 21 + 2.1 = 23.1 → 100 a normal day, 30 a holiday.
    daily = board.daily_targets("gmv", SZ_LIVE, february.dates())
    assert daily[date(2027, 2, 5)] == 100 and daily[date(2027, 2, 8)] == 30
    assert day_weight((spring, new_year), date(2027, 2, 8), LA_OPS) == 1  # not la-ops' holiday
    assert day_weight((spring, new_year), date(2027, 1, 1), LA_OPS) == Decimal("0.5")
    assert [e.name for e in events_on((spring, new_year), date(2027, 2, 8), SZ_LIVE)] == ["春节"]


def test_is_a_rule_suspended_or_stricter_on_a_day_for_a_scope() -> None:
    organisation = load_organisation(EXAMPLE_CONFIG)
    events = organisation.calendar
    jessica, lina = Scope("person", "jessica.lee"), Scope("person", "li.na")
    stricter = alert_behaviour(events, "streamer-behind-pace", jessica, date(2026, 11, 27))
    assert stricter.mode == "stricter" and stricter.factor == Decimal("0.5")
    assert stricter.events == ("Black Friday",)
    assert alert_behaviour(events, "streamer-behind-pace", lina, date(2026, 11, 27)).mode == (
        "normal"
    )
    holiday = alert_behaviour(events, "team-refund-rate-high", SZ_LIVE, date(2027, 2, 8))
    assert holiday.suspended and holiday.events == ("春节",)
    # Only the rules an event names, when it names some; a suspension wins over stricter.
    only = CalendarEvent("sale", yearly=("06-18", "06-18"), alerts="suspend", rules=("a",))
    strict = CalendarEvent("618", yearly=("06-18", "06-18"), alerts="stricter")
    assert alert_behaviour((only, strict), "a", lina, date(2026, 6, 18)).suspended
    assert alert_behaviour((only, strict), "b", lina, date(2026, 6, 18)).mode == "stricter"


@pytest.mark.parametrize(
    ("entry", "path", "message"),
    [
        ('{name: x, dates: "2026-13-01"}', "calendar[5].dates", "'2026-13-01' is not a date"),
        ("{name: x, dates: 2026-11-30..2026-11-01}", "calendar[5].dates", "the event ends"),
        ("{name: x, dates: 11-31}", "calendar[5].dates", "'11-31' is not a date"),
        ("{name: x, dates: 11-11, scope: team:la-op}", "calendar[5].scope", "unknown scope"),
        ("{name: x, dates: 11-11, rules: [nope]}", "calendar[5].rules", "unknown alert rule"),
        ("{name: x, dates: 11-11, weight: -1}", "calendar[5].weight", "greater than or equal"),
        ("{name: x, dates: 11-11, alerts: mute}", "calendar[5].alerts", "Input should be"),
    ],
)
def test_calendar_errors_are_located(tmp_path: Path, entry: str, path: str, message: str) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    text = kpis.read_text(encoding="utf-8")
    kpis.write_text(text.replace("\ncalendar:\n", f"\ncalendar:\n  - {entry}\n"), encoding="utf-8")
    # The new entry is first in the file, so it is calendar[0]; the others shift.
    _, problems = check_organisation(config)
    errors = [(p.path, p.message) for p in problems if p.severity == "error"]
    assert len(errors) == 1, errors
    assert errors[0][0] == path.replace("[5]", "[0]") and message in errors[0][1], errors


def test_an_impossible_date_in_yaml_is_located(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    text = kpis.read_text(encoding="utf-8")
    kpis.write_text(text.replace("dates: 2026-11-27,", "dates: 2026-11-31,"), encoding="utf-8")
    line = next(i for i, row in enumerate(kpis.read_text().splitlines(), 1) if "11-31" in row)
    _, problems = check_organisation(config)
    assert any(
        p.line == line and p.message.startswith("'2026-11-31' is not a valid value")
        for p in problems
    )


# -- alert rules on the calendar's days, against real figures ------------------------------


def thanksgiving_config(tmp_path: Path) -> Organisation:
    """The example, with Thanksgiving (26 November) a la-ops holiday that suspends alerts."""
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    kpis.write_text(
        kpis.read_text(encoding="utf-8").replace(
            "\ncalendar:\n",
            "\ncalendar:\n  - {name: Thanksgiving, dates: 2026-11-26, scope: team:la-ops,"
            " kind: holiday, weight: 0.5, alerts: suspend}\n",
        ),
        encoding="utf-8",
    )
    return load_organisation(config)


def late_evening(day: int) -> int:
    return int(datetime(2026, 11, day, 23, tzinfo=ZoneInfo(LA)).timestamp())


def test_alert_rules_follow_the_calendar(engine: Engine, tmp_path: Path) -> None:
    organisation = thanksgiving_config(tmp_path)
    daily = {23: "1000.00", 24: "700.00", 25: "1000.00", 26: "500.00", 27: "700.00"}
    csv = tmp_path / "orders.csv"
    csv.write_text(
        "order_id,platform,shop_id,status,currency,create_time,paid_time,update_time,"
        "sub_total,total_amount,attributed_to\n"
        + "".join(
            f"o{d},tiktok,tts-us-01,COMPLETED,USD,2026-11-{d} 12:00:00,2026-11-{d} 12:00:00,"
            f"2026-11-{d} 12:00:00,{v},{v},jessica.lee\n"
            for d, v in daily.items()
        ),
        encoding="utf-8",
    )
    assert import_file(engine, organisation, KINDS["orders"], csv).ok
    figures = Figures(engine, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    drop = AlertRuleConfig(
        id="jessica-drop",
        metric="gmv",
        scope="person:jessica.lee",
        period="today",
        condition=AlertCondition(change_percent=Decimal(-40)),
    )

    def seen(day: int) -> tuple[bool, bool, dict[str, str]]:
        [found] = observe(drop, figures, plans, organisation, late_evening(day))
        assert found.period == day_of(date(2026, 11, day), LA)
        return found.breached, found.evaluated, dict(found.detail or {})

    # Tuesday: -30 % against Monday, within the rule's -40 %.
    assert seen(24) == (False, True, {"change": "-30.0"})
    # Thanksgiving: -50 %, but the holiday suspends the rule.
    assert seen(26) == (False, False, {"suspended": "Thanksgiving"})
    # Black Friday: +40 % against Thanksgiving's 500 — and stricter does not invent a drop.
    breached, evaluated, detail = seen(27)
    assert (breached, evaluated, detail["stricter"]) == (False, True, "Black Friday")
    # The same -30 % on Black Friday is a breach: stricter halves -40 % to -20 %.
    csv.write_text(
        "order_id,platform,shop_id,status,currency,create_time,paid_time,update_time,"
        "sub_total,total_amount,attributed_to\n"
        "o26,tiktok,tts-us-01,COMPLETED,USD,2026-11-26 12:00:00,2026-11-26 12:00:00,"
        "2026-11-26 13:00:00,1000.00,1000.00,jessica.lee\n",
        encoding="utf-8",
    )
    assert import_file(engine, organisation, KINDS["orders"], csv).ok  # revised: 1,000 now
    assert seen(27) == (True, True, {"stricter": "Black Friday", "change": "-30.0"})


def test_plans_promo_days_still_weigh_days(tmp_path: Path) -> None:
    """The older form: `promo_days` on a plan, a multiplier on the same month-day every year."""
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    text = kpis.read_text(encoding="utf-8")
    text = text.replace(
        "    ramp_percent:", '    promo_days: {"11-11": 3, "12-12": 2}\n    ramp_percent:'
    )
    text = text.replace("  - {name: 双11, dates: 11-11, weight: 3}\n", "")
    text = text.replace("  - {name: 双12, dates: 12-12, weight: 2}\n", "")
    kpis.write_text(text, encoding="utf-8")
    older = load_organisation(config)
    example = load_organisation(EXAMPLE_CONFIG)
    november = month_of(date(2026, 11, 1), "Asia/Shanghai").dates()
    for organisation in (older, example):
        plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
        daily = plans.daily_targets("gmv", SZ_LIVE, november)
        # 11.11 (a Wednesday, 0.95 × 3) of a month weighing 31.9 in all.
        assert daily[date(2026, 11, 11)] == Decimal(4500000) * Decimal("2.85") / Decimal("31.9")


def test_the_digests_show_the_days_events_and_the_week_ahead(
    engine: Engine, organisation: Organisation
) -> None:
    figures = Figures(engine, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    digests = Digests(organisation, engine, figures, plans)
    # 09:00 on 26 November in Los Angeles: yesterday the 25th; Black Friday (stricter alerts)
    # and Cyber Monday in the week ahead; sz-live's 双12 is not la-ops'.
    now = int(datetime(2026, 11, 26, 9, tzinfo=ZoneInfo(LA)).timestamp())
    [post, *_] = digests.morning(team_digest(figures, plans, "la-ops", now=now), now=now)
    fields = {f.label: f.value for f in post.reply.fields}
    assert fields["Calendar"] == (
        "Nov 27 Black Friday (target weight ×2, stricter alerts); "
        "Nov 30 Cyber Monday (target weight ×1.5)"
    )
    assert "Calendar:" in post.reply.text
    # sz-live on the morning after 11.11 (company-wide), in Chinese; a range is shown as one.
    now = int(datetime(2026, 11, 12, 9, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
    [post, *_] = digests.morning(team_digest(figures, plans, "sz-live", now=now), now=now)
    assert {f.label: f.value for f in post.reply.fields}["日历"] == "11-11 双11（目标权重 ×3）"
    spring = int(datetime(2027, 2, 5, 9, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
    [post, *_] = digests.morning(team_digest(figures, plans, "sz-live", now=spring), now=spring)
    assert {f.label: f.value for f in post.reply.fields}["日历"] == (
        "02-06–02-12 春节（目标权重 ×0.3），告警暂停"
    )
    # A week without events says nothing about the calendar.
    quiet = int(datetime(2026, 10, 14, 9, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
    [post, *_] = digests.morning(team_digest(figures, plans, "sz-live", now=quiet), now=quiet)
    assert "日历" not in {f.label for f in post.reply.fields}
