"""Scorecards: weights, caps and floors, lower-is-better, tiers, commission, gates, pilots."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from bot.report import bonus_withheld
from kpi_engine.figures import Figure, Figures
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import Organisation, check_organisation, load_organisation
from kpi_engine.periods import month_of
from kpi_engine.scopes import Scope
from kpi_engine.scorecards import (
    Commission,
    Gate,
    ScorecardRule,
    ScoreItem,
    Tier,
    score,
    scorecard_for,
)
from kpi_engine.scoring import scorecard
from kpi_engine.targets import Plans, Progress
from tests.conftest import EXAMPLE_CONFIG
from tests.fakechat import Dialog

D = Decimal
RULE = ScorecardRule(
    role="streamer",
    items=(
        ScoreItem("gmv", D(60)),
        ScoreItem("avg_watch_seconds", D(20)),
        ScoreItem("refund_rate", D(20), cap=D(1), floor=D("0.5")),
    ),
    tiers=(Tier(D(80), D(1500)), Tier(D(100), D(4000))),
    commission=Commission("gmv", D(1000000), D("0.5")),
    gates=(Gate("refund_rate", max=D("0.06")),),
)
PERIOD = month_of(date(2026, 11, 1), "Asia/Shanghai")
LA = "America/Los_Angeles"


def progress(metric: str, value: str, achievement: str | None, *, pilot: bool = False) -> Progress:
    figure = Figure(metric, Scope("person", "li.na"), PERIOD, D(value), "money", "CNY", False, None)
    return Progress(
        figure, D(1), None if achievement is None else D(achievement), None, None, None, pilot, "h2"
    )


def test_weighted_score_with_caps_floors_tiers_and_commission() -> None:
    card = score(
        RULE,
        {
            "gmv": progress("gmv", "1200000", "1.5"),  # capped at 1.2 → 72 points
            "avg_watch_seconds": progress("avg_watch_seconds", "80", "0.9"),  # → 18
            "refund_rate": progress("refund_rate", "0.05", "0.8"),  # target ÷ actual → 16
        },
    )
    assert [i.points for i in card.items] == [D("72.0"), D("18.0"), D("16.0")]
    assert card.score == 106 and card.tier_bonus == 4000
    assert card.commission == D(1000)  # 0.5 % of the 200,000 above 1,000,000
    assert card.bonus == 5000 and not card.failed_gates


def test_floor_gate_pilot_and_missing_targets() -> None:
    base = {
        "gmv": progress("gmv", "900000", "0.9"),
        "avg_watch_seconds": progress("avg_watch_seconds", "80", "0.8"),
    }
    gated = score(RULE, {**base, "refund_rate": progress("refund_rate", "0.08", "0.3")})
    assert gated.items[2].points == 10  # floored at 0.5
    assert gated.score == D("80.0") and gated.tier_bonus == 1500
    assert [g.metric for g in gated.failed_gates] == ["refund_rate"] and gated.bonus == 0
    pilot = score(RULE, {**base, "refund_rate": progress("refund_rate", "0.04", "1", pilot=True)})
    assert (
        pilot.pilot and pilot.score == D("90.0") and pilot.tier_bonus == 1500 and pilot.bonus == 0
    )
    none_back = progress("refund_rate", "0", None)
    perfect = score(RULE, {**base, "refund_rate": replace(none_back, beyond=True)})
    assert perfect.items[2].achievement == 1 and perfect.items[2].points == 20  # the cap
    missing = score(RULE, {**base, "refund_rate": progress("refund_rate", "0.04", None)})
    assert missing.score is None and missing.bonus == 0  # no refund-rate target: no score yet
    assert missing.first_tier is None and gated.first_tier is None  # a tier was reached
    low = {
        "gmv": progress("gmv", "600000", "0.6"),
        "refund_rate": progress("refund_rate", "0.04", "1"),
    }
    below = score(RULE, {**base, **low})  # 36 + 16 + 20 = 72 points
    assert below.score == 72 and below.bonus == 0 and below.first_tier == 80
    assert bonus_withheld(below) == ["score below the first tier (80)"]


def test_example_scorecard_and_config_errors(tmp_path: Path) -> None:
    organisation = load_organisation(EXAMPLE_CONFIG)
    [streamer] = organisation.scorecards
    assert streamer.role == "streamer" and sum(i.weight for i in streamer.items) == 100
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    text = kpis.read_text(encoding="utf-8")
    text = text.replace(
        "{metric: avg_watch_seconds, weight: 20}", "{metric: watch_time, weight: 25}"
    )
    kpis.write_text(
        text + "  - role: streamer\n    items: [{metric: gmv, weight: 100}]\n"
        "  - role: operator\n    items:\n"
        + "".join(f"      - {{metric: gmv, weight: {w}}}\n" for w in [10] * 11),
        encoding="utf-8",
    )
    _, problems = check_organisation(config)
    found = {(p.severity, p.path, p.message, p.hint) for p in problems}
    assert ("error", "scorecards[0].items[1].metric", "unknown metric 'watch_time'", None) in {
        (s, p, m, None) for s, p, m, _ in found
    }
    assert ("error", "scorecards[0].items", "weights add up to 105, not 100", None) in found
    assert (
        "error",
        "scorecards[1].role",
        "a scorecard for 'streamer' is already defined",
        None,
    ) in found
    assert any(
        s == "warning" and p == "scorecards[2].items" and m == "11 KPIs for one role"
        for s, p, m, _ in found
    )
    assert ("error", "scorecards[2].items", "weights add up to 110, not 100", None) in found


def test_the_scorecard_for_a_role_team_and_plan() -> None:
    company = ScorecardRule("streamer", (ScoreItem("gmv", D(100)),))
    team = replace(company, items=(ScoreItem("orders", D(100)),), team="la-ops")
    dated = replace(company, items=(ScoreItem("aov", D(100)),), plan="2027")
    both = replace(company, items=(ScoreItem("views", D(100)),), team="la-ops", plan="2027")
    rules = (company, team, dated, both)
    assert scorecard_for(rules, "streamer", "sz-live", "2026-h2") is company
    assert scorecard_for(rules, "streamer", "sz-live", "2027") is dated
    assert scorecard_for(rules, "streamer", "la-ops", "2026-h2") is team  # the team's own
    assert scorecard_for(rules, "streamer", "la-ops", "2027") is both
    assert scorecard_for((company, dated), "streamer", "la-ops", None) is company
    assert scorecard_for(rules, "operator", "la-ops", "2027") is None


def test_scorecards_per_team_and_plan_in_config(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    kpis.write_text(
        kpis.read_text(encoding="utf-8")
        + "  - role: streamer\n    team: la-ops\n    items: [{metric: gmv, weight: 100}]\n"
        "  - role: streamer\n    plan: 2026-h2\n    items: [{metric: orders, weight: 100}]\n",
        encoding="utf-8",
    )
    organisation = load_organisation(config)
    assert [(r.role, r.team, r.plan) for r in organisation.scorecards] == [
        ("streamer", None, None),
        ("streamer", "la-ops", None),
        ("streamer", None, "2026-h2"),
    ]
    kpis.write_text(
        kpis.read_text(encoding="utf-8")
        + "  - role: streamer\n    team: la-ops\n    items: [{metric: gmv, weight: 100}]\n"
        "  - role: streamer\n    team: la-opz\n    plan: 2027-h1\n    items: [{metric: gmv, weight: 100}]\n",
        encoding="utf-8",
    )
    _, problems = check_organisation(config)
    found = {(p.path, p.message, p.hint) for p in problems if p.severity == "error"}
    assert found == {
        ("scorecards[3].role", "a scorecard for 'streamer' team 'la-ops' is already defined", None),
        ("scorecards[4].team", "unknown team 'la-opz'", "did you mean 'la-ops'?"),
        ("scorecards[4].plan", "unknown plan '2027-h1'", "did you mean '2026-h2'?"),
    }


def test_a_team_scorecard_scores_its_people(engine: Engine, tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    kpis.write_text(
        kpis.read_text(encoding="utf-8")
        + "  - role: streamer\n    team: la-ops\n    items: [{metric: gmv, weight: 100, cap: 2}]\n",
        encoding="utf-8",
    )
    organisation = load_organisation(config)
    csv = tmp_path / "orders.csv"
    csv.write_text(
        "order_id,platform,shop_id,status,currency,create_time,paid_time,update_time,"
        "sub_total,total_amount,attributed_to\n"
        "o1,tiktok,tts-us-01,COMPLETED,USD,2026-11-03 10:00:00,2026-11-03 10:00:00,"
        "2026-11-03 10:00:00,165000.00,165000.00,jessica.lee\n",
        encoding="utf-8",
    )
    assert import_file(engine, organisation, KINDS["orders"], csv).ok
    figures = Figures(engine, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    now = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
    card = scorecard(figures, plans, "jessica.lee", month_of(date(2026, 11, 1), LA), now=now)
    # la-ops' own card: GMV alone, 165,000 of 220,000 = 75 points (the company card would need
    # a watch-time and a refund-rate value).
    assert card is not None and [i.item.metric for i in card.items] == ["gmv"]
    assert card.score == 75


def test_each_scorecard_item_drills_down_to_its_figure_by_day(
    engine: Engine, organisation: Organisation
) -> None:
    now = int(datetime(2026, 11, 20, 4, tzinfo=UTC).timestamp())
    dialog = Dialog(engine, organisation, now)
    for asker, text, language in [
        ("li.na", "我的绩效", "zh"),
        ("wang.fang", "李娜本月绩效", "zh"),
        ("li.na", "my score this month", "en"),
        ("li.na", "今月の自分のスコア", "ja"),
    ]:
        reply = dialog.answer(asker, text)
        rule = scorecard_for(organisation.scorecards, "streamer", "sz-live", "2026-h2")
        assert rule is not None
        metrics = [item.metric for item in rule.items]
        assert len(reply.buttons) == len(metrics), reply
        for button, metric in zip(reply.buttons, metrics, strict=True):
            routed = dialog.routed(asker, button.value)
            understood = routed.understood()
            assert understood is not None, button
            assert (understood["intent"], understood["metric"]) == ("breakdown", metric), button
            assert understood["subject"] == "person:li.na" and understood["period"] == "2026-11"
            assert understood["language"] == language
