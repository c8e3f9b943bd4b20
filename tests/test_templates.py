"""`kpibot init --template …`: complete, checked organisations a team can start from."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli import app
from config.settings import TEMPLATES_DIR
from kpi_engine.figures import Figures
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import check_organisation, load_organisation
from kpi_engine.periods import month_of
from kpi_engine.scopes import Scope
from kpi_engine.scorecards import scorecard_for
from kpi_engine.scoring import scorecard
from kpi_engine.targets import Plans

TEMPLATES = ("tiktok-live-team", "amazon-jp-team", "shopee-sea-team")
runner = CliRunner()


def test_the_templates_are_the_ones_documented() -> None:
    assert sorted(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir()) == sorted(TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_template_is_a_complete_checked_organisation(tmp_path: Path, template: str) -> None:
    directory = tmp_path / "org"
    result = runner.invoke(
        app, ["init", str(directory), "--template", template, "--start", "2027-03"]
    )
    assert result.exit_code == 0, result.output
    assert f"{directory}: OK" in result.output and "Targets in 2027-03" in result.output
    organisation, problems = check_organisation(directory)
    assert organisation is not None and problems == []  # not even a warning
    assert organisation.plans[0].effective_from == date(2027, 3, 1)
    assert organisation.alerts and organisation.calendar and organisation.settings.schedules
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    scored_roles = {rule.role for rule in organisation.scorecards}
    assert {"operator", "ad_buyer", "cs"} <= scored_roles
    if template == "tiktok-live-team":  # every role of a live room is measurable
        assert {"streamer", "editor"} <= scored_roles
    for rule in organisation.scorecards:
        assert 2 <= len(rule.items) <= 5, rule.role  # a few KPIs per role
    # Everyone with a scorecard has a target for each of its KPIs from the first month on, so
    # a score exists as soon as the data does.
    for person in organisation.people.values():
        team = organisation.teams[person.team]
        rule = scorecard_for(organisation.scorecards, person.role, person.team, "main")
        if rule is None:
            continue
        for month in (date(2027, 3, 1), date(2028, 2, 1)):
            period = month_of(month, team.timezone)
            for item in rule.items:
                line = plans.target_of(item.metric, Scope("person", person.id), period)
                assert line is not None, (template, person.id, item.metric, month)
    # The new hire of each template starts at the plan's first ramp step.
    [hire] = [p for p in organisation.people.values() if p.hired is not None]
    assert hire.hired == date(2027, 3, 1)
    rule = scorecard_for(organisation.scorecards, hire.role, hire.team, "main")
    assert rule is not None
    zone = organisation.teams[hire.team].timezone
    first = plans.target_of("gmv", Scope("person", hire.id), month_of(date(2027, 3, 1), zone))
    later = plans.target_of("gmv", Scope("person", hire.id), month_of(date(2027, 9, 1), zone))
    assert first is not None and later is not None
    step = organisation.plans[0].ramp_percent[0]
    assert first.value == later.value * step / 100


def test_init_refuses_an_unknown_template_or_a_used_directory(tmp_path: Path) -> None:
    unknown = runner.invoke(app, ["init", str(tmp_path / "a"), "--template", "tiktok"])
    assert unknown.exit_code == 2 and "Unknown template 'tiktok'; templates:" in unknown.output
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x.yaml").write_text("", encoding="utf-8")
    used = runner.invoke(app, ["init", str(tmp_path / "used"), "--template", TEMPLATES[0]])
    assert used.exit_code == 2 and "is not empty" in used.output
    bad = runner.invoke(
        app, ["init", str(tmp_path / "b"), "--template", TEMPLATES[0], "--start", "March"]
    )
    assert bad.exit_code == 2 and "--start takes YYYY-MM" in bad.output


def test_an_amazon_operator_is_scored_from_their_shops_orders(
    engine: Engine, tmp_path: Path
) -> None:
    directory = tmp_path / "org"
    assert (
        runner.invoke(
            app, ["init", str(directory), "--template", "amazon-jp-team", "--start", "2027-03"]
        ).exit_code
        == 0
    )
    organisation = load_organisation(directory)
    now = int(datetime(2027, 4, 10, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
    fx = tmp_path / "fx.csv"
    fx.write_text(
        "date,currency,quote,rate\n"
        + "".join(f"2027-03-{d:02d},JPY,CNY,0.05\n" for d in range(1, 32)),
        encoding="utf-8",
    )
    assert import_file(engine, organisation, KINDS["fx_rates"], fx, now=now).ok
    # Two orders of ops.a's shop in March (Tokyo time), one cancelled after payment.
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,platform,shop_id,status,currency,create_time,paid_time,update_time,"
        "sub_total,total_amount\n"
        "a1,amazon,amz-jp-main,DELIVERED,JPY,2027-03-05 10:00:00,2027-03-05 10:00:00,"
        "2027-03-05 10:00:00,7000000,7000000\n"
        "a2,amazon,amz-jp-main,CANCELLED,JPY,2027-03-06 10:00:00,2027-03-06 10:00:00,"
        "2027-03-07 10:00:00,1000000,1000000\n",
        encoding="utf-8",
    )
    assert import_file(engine, organisation, KINDS["orders"], orders, now=now).ok
    # The shop's on-time dispatch, imported per day: ops.a answers for their shop's.
    dispatch = tmp_path / "dispatch.csv"
    dispatch.write_text(
        "metric,entity_type,entity_id,date,value\n"
        "on_time_dispatch_rate,shop,amz-jp-main,2027-03-05,1\n"
        "on_time_dispatch_rate,shop,amz-jp-main,2027-03-06,0.94\n"
        "on_time_dispatch_rate,shop,amz-jp-second,2027-03-06,0.5\n",
        encoding="utf-8",
    )
    assert import_file(engine, organisation, KINDS["metric_values"], dispatch, now=now).ok
    figures = Figures(engine, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    march = month_of(date(2027, 3, 1), "Asia/Shanghai")
    card = scorecard(figures, plans, "ops.a", march, now=now)
    assert card is not None
    by_metric = {item.item.metric: item for item in card.items}
    # GMV 8,000,000 JPY × 0.05 = 400,000 CNY of 700,000; AOV 200,000 of 250 (capped at 1.2);
    # 1 of 2 orders cancelled (50 % against 2 %: 0.04); no refunds at all: a refund rate of 0
    # against a target above 0 earns the item's cap; the shop dispatched 97 % on time (the
    # mean of its two days; the other shop is not ops.a's) against 97 %.
    gmv = by_metric["gmv"]
    assert gmv.progress is not None and gmv.progress.figure.value == Decimal(400000)
    assert gmv.points == Decimal(30) * Decimal(400000) / Decimal(700000)
    dispatched = by_metric["on_time_dispatch_rate"]
    assert dispatched.progress is not None
    assert dispatched.progress.figure.value == Decimal("0.97")
    assert dispatched.points == Decimal(15)
    assert by_metric["aov"].points == Decimal(15) * Decimal("1.2")
    assert by_metric["cancellation_rate"].points == Decimal(20) * Decimal("0.04")
    refunds = by_metric["refund_amount_rate"]
    assert refunds.progress is not None and refunds.progress.figure.value == 0
    assert refunds.points == refunds.item.weight * refunds.item.cap
    assert card.score == sum(item.points for item in card.items)
    assert card.score == (
        Decimal(30) * Decimal(400000) / Decimal(700000)
        + Decimal(15)
        + Decimal(15) * Decimal("1.2")
        + Decimal(20) * Decimal("0.04")
        + refunds.item.weight * refunds.item.cap
    )
