"""Numbers you can stake a bonus on (issue 16): each case on small hand-made data whose right
answer is worked out here by hand, from docs/metrics.md, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import re
import shutil
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from bot.features.digests.render import Digests
from bot.report import render_explanation
from kpi_engine.alerts import observe
from kpi_engine.appeals import AppealStore, correction_states
from kpi_engine.digest import recap, team_digest
from kpi_engine.figures import Figures, quantize
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.metrics import build_catalogue, custom_metric
from kpi_engine.organisation import (
    AlertRuleConfig,
    Organisation,
    check_organisation,
    load_organisation,
)
from kpi_engine.periods import Period, day_of, month_of, parse_period
from kpi_engine.scopes import Scope
from kpi_engine.scoring import scorecard
from kpi_engine.targets import Plans
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.fakechat import Dialog

D = Decimal
SHANGHAI, LA = "Asia/Shanghai", "America/Los_Angeles"
DAY = date(2026, 11, 20)
NOW = int(datetime(2026, 11, 21, 15, tzinfo=ZoneInfo(SHANGHAI)).timestamp())
ORDER_COLUMNS = [
    "order_id",
    "platform",
    "shop_id",
    "status",
    "currency",
    "create_time",
    "paid_time",
    "update_time",
    "sub_total",
    "total_amount",
    "attributed_to",
    "channel",
    "live_session_id",
    "is_sample",
]
PLATFORM = {"tts-us-01": "tiktok", "tts-gb-01": "tiktok", "amz-jp-01": "amazon"}
CURRENCY = {"tts-us-01": "USD", "tts-gb-01": "GBP", "amz-jp-01": "JPY"}


class Data:
    """Rows written as import files and imported through the real importer."""

    def __init__(self, engine: Engine, organisation: Organisation, tmp: Path) -> None:
        self.engine, self.organisation, self.tmp = engine, organisation, tmp
        self.files = 0

    def load(self, kind: str, rows: list[dict[str, str]]) -> None:
        self.files += 1
        path = self.tmp / f"{kind}-{self.files}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        report = import_file(self.engine, self.organisation, KINDS[kind], path)
        assert report.ok, report.render()

    def orders(self, *rows: dict[str, str]) -> None:
        self.load("orders", [{c: row.get(c, "") for c in ORDER_COLUMNS} for row in rows])

    def rates(self, day: date, **rates: str) -> None:
        self.load(
            "fx_rates",
            [
                {"date": day.isoformat(), "currency": c, "quote": "CNY", "rate": r}
                for c, r in rates.items()
            ],
        )


def order(
    number: str,
    shop: str,
    amount: str,
    paid: str,
    *,
    who: str = "",
    channel: str = "live",
    sample: bool = False,
    updated: str | None = None,
) -> dict[str, str]:
    """An order paid at the shop's local time `paid` (naive times are read in the shop's zone)."""
    return {
        "order_id": number,
        "platform": PLATFORM[shop],
        "shop_id": shop,
        "status": "COMPLETED",
        "currency": CURRENCY[shop],
        "create_time": paid,
        "paid_time": paid,
        "update_time": updated or paid,
        "sub_total": amount,
        "total_amount": amount,
        "attributed_to": who,
        "channel": channel,
        "is_sample": "true" if sample else "false",
    }


@pytest.fixture
def data(engine: Engine, organisation: Organisation, tmp_path: Path) -> Data:
    return Data(engine, organisation, tmp_path)


def plans_of(organisation: Organisation) -> Plans:
    return Plans(organisation.plans, organisation.targets, organisation.catalogue)


def config_copy(tmp_path: Path, edit: dict[str, tuple[str, str]]) -> Path:
    """The example configuration with text replaced in some files."""
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    for name, (old, new) in edit.items():
        path = config / name
        content = path.read_text(encoding="utf-8")
        assert old in content, old
        path.write_text(content.replace(old, new), encoding="utf-8")
    return config


# -- 1. every amount labelled with its currency, shops ranked in one ---------------------------


def test_top_shops_are_ranked_and_labelled_in_the_teams_currency(
    engine: Engine, organisation: Organisation, data: Data
) -> None:
    data.rates(DAY, JPY="0.046210", GBP="9.0125")
    # 100,000 JPY = 4,621.00 CNY; 600 GBP = 5,407.50 CNY: in raw amounts Japan looks first.
    data.orders(
        order("J1", "amz-jp-01", "100000", "2026-11-20 12:00:00", channel="mall"),
        order("G1", "tts-gb-01", "600.00", "2026-11-20 05:00:00"),
    )
    figures = Figures(engine, organisation)
    plans = plans_of(organisation)
    day = day_of(DAY, SHANGHAI)
    found = recap(figures, plans, "sz-live", day, now=NOW)
    assert [r.entity for r in found.top_shops if r.rank] == ["tts-gb-01", "amz-jp-01"]
    post = Digests(organisation, engine, figures, plans).recap(found, "evening")
    [shops] = [f.value for f in post.reply.fields if f.label == "店铺前三"]
    gb, jp = organisation.shops["tts-gb-01"].name, organisation.shops["amz-jp-01"].name
    assert shops == f"1. {gb} 5,407.50 CNY · 2. {jp} 4,621.00 CNY"
    assert "100,000" not in post.reply.text and "店铺前三（折合 CNY）" in post.reply.text
    # What was posted is watched in the currency it was shown in.
    watched = {(w.scope.id, w.currency, w.value) for w in post.watched if w.scope.kind == "shop"}
    assert watched == {("tts-gb-01", "CNY", D("5407.5000")), ("amz-jp-01", "CNY", D("4621.000000"))}


# -- 2. "why" against the same to-date baseline as the comparison ---------------------------


def test_why_compares_a_month_under_way_with_as_many_days_of_the_last(
    engine: Engine, organisation: Organisation, data: Data
) -> None:
    for day in (date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 15), date(2026, 11, 1)):
        data.rates(day, GBP="9.0")
    data.orders(
        order("A1", "tts-gb-01", "100.00", "2026-10-01 05:00:00"),
        order("A2", "tts-gb-01", "100.00", "2026-10-02 05:00:00"),
        order("A3", "tts-gb-01", "5000.00", "2026-10-15 05:00:00"),  # after the same days
        order("B1", "tts-gb-01", "150.00", "2026-11-01 05:00:00"),
    )
    now = int(datetime(2026, 11, 2, 15, tzinfo=ZoneInfo(SHANGHAI)).timestamp())
    figures = Figures(engine, organisation)
    team = Scope("team", "sz-live")
    month = parse_period("this_month", now=now, timezone=SHANGHAI)
    explanation = figures.explain(team, month, now=now)
    assert explanation is not None
    assert explanation.previous == Period("custom", date(2026, 10, 1), date(2026, 10, 2), SHANGHAI)
    assert (explanation.before, explanation.after) == (D("1800.00"), D("1350.00"))
    text_ = render_explanation(explanation, month, "CNY", organisation.catalogue)
    assert text_.startswith("GMV 2026-11 vs 2026-10-01..2026-10-02: 1,800.00 CNY")
    # The chat's "why" says the same baseline.
    answer = Dialog(engine, organisation, now).answer("wang.fang", "为什么本月GMV变了")
    assert answer.headline == "深圳直播组 · GMV 2026-11 对比 2026-10-01..2026-10-02"
    assert "1,800.00 CNY → 1,350.00 CNY" in answer.text


# -- 4. bonus money in an explicit currency --------------------------------------------------


def test_a_bonus_tier_without_a_currency_is_refused_across_currencies(tmp_path: Path) -> None:
    config = config_copy(
        tmp_path,
        {
            "kpis.yaml": (
                "      currency: CNY\n      tiers: [{min_score: 80, amount: 1500}",
                "      tiers: [{min_score: 80, amount: 1500}",
            )
        },
    )
    text_ = (config / "kpis.yaml").read_text(encoding="utf-8")
    override = text_[text_.index("      teams:\n") :]
    (config / "kpis.yaml").write_text(text_.replace(override, ""), encoding="utf-8")
    organisation, problems = check_organisation(config)
    assert organisation is None
    [problem] = [p for p in problems if p.severity == "error"]
    assert problem.path == "scorecards[0].bonus.currency"
    assert problem.message == (
        "bonus amounts without a currency, but the 'streamer' people's teams report in CNY and USD"
    )


def test_a_bonus_is_paid_in_its_own_currency(
    engine: Engine, organisation: Organisation, data: Data, tmp_path: Path
) -> None:
    november = month_of(date(2026, 11, 1), LA)
    data.rates(date(2026, 11, 10), USD="7.1180")
    # jessica.lee (Los Angeles, USD) sells 250,000 USD = 1,779,500 CNY.
    data.orders(
        order("U1", "tts-us-01", "150000.00", "2026-11-10 12:00:00", who="jessica.lee"),
        order("U2", "tts-us-01", "100000.00", "2026-11-10 13:00:00", who="jessica.lee"),
    )
    now = int(datetime(2026, 11, 21, 12, tzinfo=ZoneInfo(LA)).timestamp())
    # The example: Los Angeles's own bonus, in USD (above 200,000 USD, 0.5 %).
    card = scorecard(
        Figures(engine, organisation), plans_of(organisation), "jessica.lee", november, now=now
    )
    assert card is not None and card.currency == "USD" and card.commission == D("250.00")
    # One company-wide bonus in CNY: the commission's threshold is CNY, and so is her GMV for it.
    config = config_copy(tmp_path, {})
    content = (config / "kpis.yaml").read_text(encoding="utf-8")
    (config / "kpis.yaml").write_text(content[: content.index("      teams:\n")], encoding="utf-8")
    company_wide = load_organisation(config)
    card = scorecard(
        Figures(engine, company_wide), plans_of(company_wide), "jessica.lee", november, now=now
    )
    assert card is not None and card.currency == "CNY"
    assert card.commission == (D("1779500") - 1500000) * D("0.5") / 100 == D("1397.5")


# -- 5. corrections never count twice --------------------------------------------------------


def _accept(
    engine: Engine, figures: Figures, person: str, day: Period, claimed: str, now: int
) -> int:
    store = AppealStore(engine)
    figure = figures.figure("gmv", Scope("person", person), day, now=now)
    appeal = store.open(
        appellant=person,
        figure=figure,
        scope=f"person:{person}",
        claimed=D(claimed),
        reason="two orders missing",
        evidence=[],
        reviewer="wang.fang",
        platform="slack",
        workspace="",
        channel="",
        now=now,
        sla_hours=24,
    )
    assert store.move(appeal.id, "accept", "wang.fang", now).ok
    return appeal.id


def test_a_correction_stops_adding_once_the_data_reaches_the_claim(
    engine: Engine, organisation: Organisation, data: Data
) -> None:
    data.rates(DAY, GBP="10")
    data.orders(
        order("C1", "tts-gb-01", "3000.00", "2026-11-20 05:00:00", who="li.na"),
        order("C2", "tts-gb-01", "2000.00", "2026-11-20 06:00:00", who="li.na"),
        order("C3", "tts-gb-01", "1000.00", "2026-11-20 07:00:00", who="zhang.wei"),
    )
    figures = Figures(engine, organisation)
    day, li, team = day_of(DAY, SHANGHAI), Scope("person", "li.na"), Scope("team", "sz-live")
    keys = ["gmv", "aov", "net_gmv", "orders"]

    def now_(scope: Scope) -> dict[str, Decimal | None]:
        return {k: f.value for k, f in figures.figures(keys, scope, day, now=NOW).items()}

    assert now_(li)["gmv"] == D("50000.00")
    appeal = _accept(engine, figures, "li.na", day, "60000", NOW)
    # Accepted: 60,000 for her, 70,000 for the team; AOV and net GMV follow the GMV.
    assert now_(li) == {"gmv": 60000, "aov": 30000, "net_gmv": 60000, "orders": 2}
    assert now_(team)["gmv"] == 70000
    assert abs((now_(team)["aov"] or 0) - D(70000) / 3) < D("1e-20")
    assert figures.figure("gmv", li, day, now=NOW).corrections == (appeal,)
    # The missing orders arrive, partly: the data says 55,000, the claim still rules.
    data.orders(order("C4", "tts-gb-01", "500.00", "2026-11-20 08:00:00", who="li.na"))
    assert now_(li) == {"gmv": 60000, "aov": 20000, "net_gmv": 60000, "orders": 3}
    assert now_(team)["gmv"] == 70000
    [state] = correction_states(figures, now=NOW)
    assert (state.raw, state.adds, state.diverged) == (D("55000.00"), D("5000.00"), False)
    # All of them and more: the data passes the claim, which adds nothing any more.
    data.orders(order("C5", "tts-gb-01", "1500.00", "2026-11-20 09:00:00", who="li.na"))
    assert now_(li) == {"gmv": 70000, "aov": D(70000) / 4, "net_gmv": 70000, "orders": 4}
    assert now_(team)["gmv"] == 80000  # 87,185 against 60,000 claimed can no longer happen
    assert figures.figure("gmv", li, day, now=NOW).corrections == ()
    [state] = correction_states(figures, now=NOW)
    assert state.diverged and state.adds == 0 and state.raw == D("70000.00")
    # Rollups and the raw rows agree with the correction applied.
    raw = Figures(engine, organisation, rollups=False)
    assert raw.figures(keys, team, day, now=NOW) == figures.figures(keys, team, day, now=NOW)


# -- 6. an incomplete figure is marked on every surface --------------------------------------


def test_a_missing_rate_is_named_in_the_digest_and_alerts_wait(
    engine: Engine, organisation: Organisation, data: Data
) -> None:
    data.rates(DAY, JPY="0.046210")  # no GBP rate that day
    data.orders(
        order("J1", "amz-jp-01", "100000", "2026-11-20 12:00:00"),
        order("G1", "tts-gb-01", "600.00", "2026-11-20 05:00:00"),
    )
    figures, plans = Figures(engine, organisation), plans_of(organisation)
    digest = team_digest(figures, plans, "sz-live", now=NOW)
    [post, *_] = Digests(organisation, engine, figures, plans).morning(digest, now=NOW)
    fields = {f.label: f.value for f in post.reply.fields}
    assert "缺少汇率 GBP 2026-11-20" in (post.reply.context or "")
    assert fields["本月进度"].endswith("（数据不完整）")
    assert fields["本月累计"].startswith("4,621.00 CNY")
    # An alert on an incomplete figure waits for the rate instead of judging a partial sum.
    rule = AlertRuleConfig.model_validate(
        {"id": "low", "metric": "gmv", "scope": "team:sz-live", "period": "today",
         "condition": {"below": 1000000}}
    )  # fmt: skip
    [seen] = observe(
        rule,
        figures,
        plans,
        organisation,
        int(datetime(2026, 11, 20, 20, tzinfo=ZoneInfo(SHANGHAI)).timestamp()),
    )
    assert not seen.evaluated and seen.detail == {"incomplete": "GBP 2026-11-20"}


# -- 7. the bonus's reason on every surface --------------------------------------------------


def test_the_bonus_card_field_says_why_it_is_zero(
    engine: Engine, organisation: Organisation, data: Data
) -> None:
    data.rates(DAY, GBP="10")
    data.orders(order("R1", "tts-gb-01", "100.00", "2026-11-20 05:00:00", who="li.na"))
    data.load(
        "refunds",
        [{"refund_id": "R1", "order_id": "R1", "platform": "tiktok", "shop_id": "tts-gb-01",
          "status": "COMPLETED", "currency": "GBP", "create_time": "2026-11-20 09:00:00",
          "update_time": "2026-11-20 10:00:00", "refund_amount": "100.00"}],
    )  # fmt: skip
    answer = Dialog(engine, organisation, NOW).answer("li.na", "我的绩效")
    fields = {f.label: f.value for f in answer.fields}
    # Chat cards render fields (Slack section fields, Feishu columns, DingTalk lines): the reason
    # is in the field, not only in the text's fallback.
    assert fields["奖金预估"] == ("0.00 CNY（退款率 100.0% 高于上限 6.0%；有指标尚无数值或目标）")
    english = Dialog(engine, organisation, NOW).answer("li.na", "my bonus this month")
    bonus = {f.label: f.value for f in english.fields}["Bonus preview"]
    assert (
        bonus
        == "0.00 CNY (Refund rate (orders) 100.0% above its limit 6.0%; an item has no value or target yet)"
    )


# -- 8. formulas over formulas ---------------------------------------------------------------


def test_a_formula_over_a_formula_has_a_value(
    engine: Engine, organisation: Organisation, data: Data
) -> None:
    data.rates(DAY, GBP="10")
    data.orders(
        order("F1", "tts-gb-01", "30.00", "2026-11-20 05:00:00"),
        order("F2", "tts-gb-01", "10.00", "2026-11-20 06:00:00"),
    )
    twice = custom_metric("aov_twice", "AOV × 2", "客单价×2", "money", "higher", "aov * 2")
    catalogue = build_catalogue(
        [*(m for m in organisation.catalogue.metrics.values() if not m.builtin), twice]
    )
    figures = Figures(engine, replace(organisation, catalogue=catalogue))
    found = figures.figures(
        ["aov_twice", "net_gmv_per_order"],
        Scope("shop", "tts-gb-01"),
        day_of(DAY, "Europe/London"),
        now=NOW,
    )
    assert found["aov_twice"].value == 40 and found["net_gmv_per_order"].value == 20


# -- 9. refunds of sample orders never count -------------------------------------------------


def test_refunds_of_sample_orders_do_not_count(
    engine: Engine, organisation: Organisation, data: Data
) -> None:
    data.rates(DAY, GBP="10")
    data.orders(
        order("S1", "tts-gb-01", "50.00", "2026-11-20 05:00:00"),
        order("S2", "tts-gb-01", "20.00", "2026-11-20 06:00:00", sample=True),
    )
    refund = {
        "platform": "tiktok",
        "shop_id": "tts-gb-01",
        "status": "COMPLETED",
        "currency": "GBP",
        "create_time": "2026-11-20 09:00:00",
        "update_time": "2026-11-20 10:00:00",
    }
    data.load(
        "refunds",
        [
            {**refund, "refund_id": "X1", "order_id": "S1", "refund_amount": "5.00"},
            {**refund, "refund_id": "X2", "order_id": "S2", "refund_amount": "20.00"},
            # a refund whose order was never imported still counts for its shop
            {**refund, "refund_id": "X3", "order_id": "UNKNOWN", "refund_amount": "1.00"},
        ],
    )
    shop, day = Scope("shop", "tts-gb-01"), day_of(DAY, "Europe/London")
    for figures in (Figures(engine, organisation), Figures(engine, organisation, rollups=False)):
        found = figures.figures(["refund_amount", "net_gmv", "gmv"], shop, day, now=NOW)
        assert (found["gmv"].value, found["refund_amount"].value) == (D("50.00"), D("6.00"))
        assert found["net_gmv"].value == D("44.00")


# -- 10. one conversion rate per name, and the shops' own traffic -------------------------------


def test_the_explanation_uses_shop_traffic_where_every_shop_has_it(
    engine: Engine, organisation: Organisation, data: Data
) -> None:
    days = (date(2026, 11, 19), DAY)
    for day in days:
        data.rates(day, GBP="10", JPY="0.05")
    data.orders(
        order("T1", "tts-gb-01", "100.00", "2026-11-19 05:00:00", channel="video"),
        order("T2", "amz-jp-01", "2000", "2026-11-20 12:00:00", channel="mall"),
        order("T3", "tts-gb-01", "100.00", "2026-11-20 05:00:00", channel="video"),
    )
    values = [
        {
            "metric": "shop_visitors",
            "entity_type": "shop",
            "entity_id": shop,
            "date": day.isoformat(),
            "value": str(n),
        }
        for shop in ("tts-gb-01", "amz-jp-01")
        for day, n in zip(days, (50, 100), strict=True)
    ]
    data.load("metric_values", values)
    figures = Figures(engine, organisation)
    explanation = figures.explain(Scope("team", "sz-live"), day_of(DAY, SHANGHAI), now=NOW)
    assert explanation is not None and explanation.traffic == "shop_visitors"
    assert [d.metric for d in explanation.drivers] == [
        "shop_visitors",
        "shop_conversion_rate",
        "aov",
    ]
    assert [(d.before, d.after) for d in explanation.drivers][:2] == [
        (100, 200),
        (D("0.01"), D("0.01")),
    ]
    assert explanation.unexplained == 0 and explanation.change == 100
    # The conversion the explanation names is the one chat answers for 转化率.
    rate = figures.figure(
        "shop_conversion_rate", Scope("team", "sz-live"), day_of(DAY, SHANGHAI), now=NOW
    )
    assert rate.value == explanation.drivers[1].after


# -- 11. co-hosted lives: full or split, and the overlap said --------------------------------


@pytest.mark.parametrize("rule", ["full", "split"])
def test_co_hosts_share_credit_by_the_configured_rule(
    engine: Engine, organisation: Organisation, data: Data, rule: str
) -> None:
    attribution = organisation.settings.attribution.model_copy(update={"cohost_credit": rule})
    org = replace(
        organisation, settings=organisation.settings.model_copy(update={"attribution": attribution})
    )
    data.rates(DAY, GBP="10")
    data.load(
        "live_sessions",
        [{"session_id": "L1", "platform": "tiktok", "shop_id": "tts-gb-01", "hosts": "li.na,zhang.wei",
          "start_time": "2026-11-20 04:00:00", "end_time": "2026-11-20 06:00:00", "views": "1000"}],
    )  # fmt: skip
    data.orders(
        order("H1", "tts-gb-01", "30.00", "2026-11-20 05:00:00"),  # during the co-hosted live
        order("H2", "tts-gb-01", "10.00", "2026-11-20 05:30:00", who="li.na"),
    )
    day = day_of(DAY, SHANGHAI)
    people = [Scope("person", "li.na"), Scope("person", "zhang.wei")]
    for figures in (Figures(engine, org), Figures(engine, org, rollups=False)):
        found = figures.figures_of(
            ["gmv", "orders", "views"], [*people, Scope("team", "sz-live")], day, now=NOW
        )
        li, zhang, team = (found[s] for s in (*people, Scope("team", "sz-live")))
        assert team["gmv"].value == 400
        if rule == "full":  # each host credited with the whole order: 700 between them
            assert (li["gmv"].value, zhang["gmv"].value) == (400, 300)
            assert (li["views"].value, zhang["views"].value) == (1000, 1000)
        else:  # split: the hosts share it, and people add up to the team
            assert (li["gmv"].value, zhang["gmv"].value) == (250, 150)
            assert (li["orders"].value, zhang["orders"].value) == (D("1.5"), D("0.5"))
            assert (li["views"].value, zhang["views"].value) == (500, 500)
        assert li["gmv"].shared and zhang["gmv"].shared and not team["gmv"].shared
    ranking = Dialog(engine, org, NOW).answer("wang.fang", "昨天团队排名")
    said = "平分" if rule == "split" else "个人合计会高于团队"
    assert ranking.context is not None and said in ranking.context


# -- 13. rate changes in pp, outputs quantized -----------------------------------------------


def test_rate_changes_are_in_points_and_outputs_carry_no_noise(
    engine: Engine, organisation: Organisation, data: Data
) -> None:
    figures, plans = Figures(engine, organisation), plans_of(organisation)
    digests = Digests(organisation, engine, figures, plans)
    from kpi_engine.compare import Delta

    assert digests._delta("zh", Delta(D("0.075"), D("0.07")), "ratio") == "↓0.5 pp"
    assert digests._delta("zh", Delta(D("100"), D("93.3")), "money") == "↓6.7%"
    assert quantize(D("4499999.999999999999999999999"), "money", "CNY") == D("4500000.00")
    assert str(quantize(D("83.50386075502939478031937429"), "decimal", None)) == "83.5039"


# -- 14. every posted figure watched ------------------------------------------------------


def test_a_chat_answer_is_watched_for_revisions(
    engine: Engine, organisation: Organisation, data: Data
) -> None:
    from bot.features.digests.restatements import check_restatements

    data.rates(DAY, GBP="10")
    data.orders(order("W1", "tts-gb-01", "100.00", "2026-11-20 05:00:00", who="li.na"))
    dialog = Dialog(engine, organisation, NOW)
    answer = dialog.answer("li.na", "昨天订单多少")
    assert "成交订单：1" in answer.text
    with engine.connect() as conn:
        posted = conn.execute(text("SELECT scope, metric, value FROM posted_figures")).all()
    assert ("person:li.na", "orders", "1") in [tuple(r) for r in posted]
    # A late order: the number given in chat is revised under the answer, in her direct chat.
    data.orders(order("W2", "tts-gb-01", "100.00", "2026-11-20 06:00:00", who="li.na"))
    notifier = dialog.pipeline.notifier
    figures = Figures(engine, organisation)
    assert check_restatements(engine, organisation, figures, notifier, now=NOW) >= 1
    assert notifier.sender is not None
    notifier.sender.drain()
    notices = [(r, t) for r, t in dialog.chat.sent if r.text.startswith("📝")]
    said = [r.text for r, _ in notices]
    assert "📝 更正：李娜 2026-11-20 的成交订单已由 1 修订为 2（" in "".join(said)
    lina = organisation.people["li.na"].chat.slack
    assert all(t.thread == "1" and (t.channel, t.user) == ("D-li.na", lina) for _, t in notices)


# -- the cause: one definition per base measure ----------------------------------------------


def test_each_base_measure_is_defined_once() -> None:
    """A base measure's SQL (its value column, its filter) appears only in its catalogue entry,
    and its names and words only in the catalogue."""
    computing = ("metrics", "measure_sql", "rollups", "figures", "digest", "alerts", "scoring")
    engine_sources = {
        p: p.read_text(encoding="utf-8")
        for p in (ROOT / "kpi_engine").glob("*.py")
        if p.stem in computing
    }
    for needle in (
        "t.sub_total",
        "t.refund_amount",
        "t.avg_viewing_ms",
        "'COMPLETED'",
        "is_sample",
    ):
        holders = {p.name for p, text_ in engine_sources.items() if needle in text_}
        assert holders == {"metrics.py"}, (needle, holders)
    bot_sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "bot").rglob("*.py"))
    for word in ("成交额", "退货率", "观看人数", "投产比", "客单价"):
        assert not re.search(rf'"{word}"', bot_sources), word
