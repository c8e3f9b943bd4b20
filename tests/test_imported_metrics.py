"""Imported metrics are metrics: numbers imported as daily `metric_values` rows (first response
time, on-time dispatch), declared in config with how they add up, get targets, scores, alerts
and chat answers like GMV (issue 22; docs/metrics.md, "Imported metrics")."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli import app
from bot.features.alerts.service import AlertService
from bot.features.digests.render import Digests
from kpi_engine.clock import fixed_clock
from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.digest import last_week, recap, team_digest
from kpi_engine.figures import Figures
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.metrics import Imported, aggregate_imported
from kpi_engine.organisation import Organisation, check_organisation, load_organisation
from kpi_engine.periods import day_of, month_of
from kpi_engine.scopes import Scope
from kpi_engine.scoring import scorecard
from kpi_engine.targets import Plans
from tests.fakechat import Dialog, FakeChat, bot_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = int(datetime(2026, 11, 20, 10, tzinfo=SHANGHAI).timestamp())
NOVEMBER = month_of(date(2026, 11, 1), "Asia/Shanghai")
CHAT_IDS = {"cs.a": "U0CSA", "ops.a": "U0OPSA", "zhou.min": "U0ZHOU", "cs.b": "U0CSB"}
D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


def test_each_aggregation_adds_rows_up_as_declared() -> None:
    rows = {
        ("a", D1): Decimal(40),
        ("a", D2): Decimal(60),
        ("b", D1): Decimal(100),
        ("b", D3): Decimal(20),
    }
    counts = {("a", D1): Decimal(10), ("a", D2): Decimal(30), ("b", D1): Decimal(10)}
    assert aggregate_imported(Imported("sum"), rows) == 220
    assert aggregate_imported(Imported("mean"), rows) == 55
    assert aggregate_imported(Imported("min"), rows) == 20
    assert aggregate_imported(Imported("max"), rows) == 100
    # Weighted by the companion count of the same person and day; b's 3rd has no count.
    assert aggregate_imported(Imported("weighted", "n"), rows, counts) == Decimal(
        40 * 10 + 60 * 30 + 100 * 10
    ) / Decimal(50)
    # Each one's latest day (a: the 2nd, b: the 3rd), averaged.
    assert aggregate_imported(Imported("latest"), rows) == 40
    assert aggregate_imported(Imported("mean"), {}) is None
    assert aggregate_imported(Imported("weighted", "n"), rows, {}) is None


def _template(tmp_path: Path) -> Path:
    """The TikTok template from November 2026, with Slack ids and a second agent."""
    directory = tmp_path / "org"
    result = CliRunner().invoke(
        app, ["init", str(directory), "--template", "tiktok-live-team", "--start", "2026-11"]
    )
    assert result.exit_code == 0, result.output
    people = directory / "people.yaml"
    text = people.read_text(encoding="utf-8")
    for person, user in CHAT_IDS.items():
        text = text.replace(f"{{id: {person}, ", f"{{id: {person}, chat: {{slack: {user}}}, ")
    text += "  - {id: cs.b, chat: {slack: U0CSB}, name: 客服B, role: cs, team: live, manager: zhou.min}\n"
    people.write_text(text, encoding="utf-8")
    return directory


def _import(engine: Engine, organisation: Organisation, path: Path, rows: list[str]) -> None:
    path.write_text("metric,entity_type,entity_id,date,value\n" + "".join(rows), "utf-8")
    report = import_file(engine, organisation, KINDS["metric_values"], path, now=NOW)
    assert report.ok, report


def _service_data(engine: Engine, organisation: Organisation, tmp_path: Path) -> None:
    """1–19 November: cs.a answers 100 chats a day in 50 s (the 19th: 300 chats in 30 s),
    cs.b 100 chats in 90 s; tts-us dispatches 90 % on time, tts-gb 99 %."""
    rows = []
    for day in range(1, 20):
        when = f"2026-11-{day:02d}"
        busy = day == 19
        rows += [
            f"conversations,person,cs.a,{when},{300 if busy else 100}\n",
            f"first_response_seconds,person,cs.a,{when},{30 if busy else 50}\n",
            f"response_rate_12h,person,cs.a,{when},0.97\n",
            f"dispute_days,person,cs.a,{when},2.5\n",
            f"conversations,person,cs.b,{when},100\n",
            f"first_response_seconds,person,cs.b,{when},90\n",
            f"on_time_dispatch_rate,shop,tts-us,{when},0.9\n",
            f"on_time_dispatch_rate,shop,tts-gb,{when},0.99\n",
        ]
    _import(engine, organisation, tmp_path / "service.csv", rows)


def test_a_cs_agent_asks_their_first_response_time_with_target_and_score(
    engine: Engine, tmp_path: Path
) -> None:
    organisation = load_organisation(_template(tmp_path))
    _service_data(engine, organisation, tmp_path)
    figures = Figures(engine, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    agent = Scope("person", "cs.a")
    # 18 days × 100 chats at 50 s and 300 chats at 30 s: (90,000 + 9,000) / 2,100.
    mine = figures.figure("first_response_seconds", agent, NOVEMBER, now=NOW)
    assert mine.value == Decimal(99000) / Decimal(2100)
    assert mine.unit == "seconds" and mine.provisional
    progress = plans.progress(mine, NOW)
    assert progress.target == 60  # the role-wide target; lower is better
    assert progress.achievement == Decimal(60) / mine.value
    # The team: both agents' rows, weighted by their chats (it has none of its own).
    team = figures.figure("first_response_seconds", Scope("team", "live"), NOVEMBER, now=NOW)
    assert team.value == Decimal(99000 + 19 * 100 * 90) / Decimal(2100 + 1900)
    # An operator's on-time dispatch is their shops': ops.a runs both.
    ops = figures.figure("on_time_dispatch_rate", Scope("person", "ops.a"), NOVEMBER, now=NOW)
    assert ops.value == Decimal("0.945")
    # Ranked with lower is better: cs.a (47 s) before cs.b (90 s).
    ranked = figures.ranking(
        "first_response_seconds", [agent, Scope("person", "cs.b")], NOVEMBER, now=NOW
    )
    assert [(r.entity, r.rank) for r in ranked] == [("cs.a", 1), ("cs.b", 2)]
    # Settled a day after November (metric_values' lag), dispute days three days after.
    second = int(datetime(2026, 12, 2, 10, tzinfo=SHANGHAI).timestamp())
    settled = figures.figures(
        ["first_response_seconds", "dispute_days"], agent, NOVEMBER, now=second
    )
    assert not settled["first_response_seconds"].provisional
    assert settled["dispute_days"].provisional and settled["dispute_days"].value == Decimal("2.5")
    # The agent's scorecard includes it.
    card = scorecard(figures, plans, "cs.a", NOVEMBER, now=NOW)
    assert card is not None
    items = {item.item.metric: item for item in card.items}
    assert set(items) == {
        "first_response_seconds",
        "response_rate_12h",
        "dispute_days",
        "conversations",
    }
    first = items["first_response_seconds"]
    assert first.points == Decimal(35) * min(Decimal("1.2"), Decimal(60) / mine.value)
    # Asked in chat, in their words: the figure with its target and achievement.
    dialog = Dialog(engine, organisation, NOW)
    reply = dialog.answer("cs.a", "本月我的首次回复时间")
    assert "首次回复时间" in reply.text
    assert "47 秒" in reply.text and "60 秒" in reply.text, reply.text
    understood = dialog.routed("cs.a", "my first response time this month").request
    assert understood is not None and understood.metric == "first_response_seconds"


def test_an_operator_gets_their_shops_on_time_dispatch_alert(
    engine: Engine, tmp_path: Path
) -> None:
    organisation = load_organisation(_template(tmp_path))
    _service_data(engine, organisation, tmp_path)
    chat = FakeChat("slack", private_in_place=True)
    bot = bot_for(engine, organisation, {"slack": chat}, fixed_clock(NOW))
    alerts: AlertService = bot.service("alerts")
    alerts.run(NOW)
    bot.sender.drain()
    [alert] = [a for a in alerts.store.open_alerts() if a.rule.startswith("dispatch-late")]
    assert alert.rule == "dispatch-late-tts-us"  # 90 % this week; tts-gb's 99 % is fine
    assert [p.id for p in alerts.owners(alert)] == ["ops.a"]
    told = {target.user for _, target in chat.sent if target.user}
    assert told == {CHAT_IDS["ops.a"]}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{key: x_rate, name: {en: X, zh: X}, unit: ratio, direction: higher, formula: gmv,"
            " imported: {aggregate: mean}}",
            "either a formula or an imported block",
        ),
        (
            "{key: x_amount, name: {en: X, zh: X}, unit: money, direction: higher,"
            " imported: {aggregate: sum}}",
            "cannot be money",
        ),
        (
            "{key: x_time, name: {en: X, zh: X}, unit: seconds, direction: lower,"
            " imported: {aggregate: weighted, weight: conversatons}}",
            "did you mean 'conversations'?",
        ),
        (
            "{key: x_time, name: {en: X, zh: X}, unit: seconds, direction: lower,"
            " imported: {aggregate: mean, weight: conversations}}",
            "only aggregate: weighted takes a weight",
        ),
        (
            "{key: x_time, name: {en: X, zh: X}, unit: seconds, direction: lower,"
            " imported: {aggregate: median}}",
            "aggregate",
        ),
    ],
)
def test_imported_metric_errors_are_located(tmp_path: Path, entry: str, message: str) -> None:
    directory = _template(tmp_path)
    (directory / "more.yaml").write_text(f"metrics:\n  - {entry}\n", encoding="utf-8")
    organisation, problems = check_organisation(directory)
    assert organisation is None
    [problem] = [p for p in problems if p.severity == "error"]
    assert problem.file.endswith("more.yaml") and message in str(problem), str(problem)


def test_an_undeclared_imported_key_is_refused_with_how_to_declare_it(tmp_path: Path) -> None:
    directory = _template(tmp_path)
    (directory / "more.yaml").write_text(
        "scorecards:\n  - role: cs\n    team: live\n"
        "    items: [{metric: ticket_backlog, weight: 100}]\n",
        encoding="utf-8",
    )
    _, problems = check_organisation(directory)
    [problem] = [p for p in problems if p.severity == "error"]
    assert "unknown metric 'ticket_backlog'" in problem.message
    assert problem.hint is not None and "with an imported: block" in problem.hint


def test_a_formula_over_imported_metrics(engine: Engine, tmp_path: Path) -> None:
    directory = _template(tmp_path)
    (directory / "more.yaml").write_text(
        "metrics:\n"
        "  - {key: disputes, name: {en: Disputes, zh: 纠纷数}, unit: count, direction: lower,"
        " imported: {aggregate: sum}}\n"
        "  - {key: resolved_disputes, name: {en: Resolved, zh: 已解决纠纷}, unit: count,"
        " direction: higher, imported: {aggregate: sum}}\n"
        "  - {key: dispute_resolution_rate, name: {en: Resolution rate, zh: 纠纷解决率},"
        " unit: ratio, direction: higher, formula: resolved_disputes / disputes}\n",
        encoding="utf-8",
    )
    organisation = load_organisation(directory)
    _import(
        engine,
        organisation,
        tmp_path / "disputes.csv",
        [
            "disputes,person,cs.a,2026-11-02,4\n",
            "resolved_disputes,person,cs.a,2026-11-02,3\n",
            "disputes,person,cs.b,2026-11-03,4\n",
            "resolved_disputes,person,cs.b,2026-11-03,1\n",
        ],
    )
    figures = Figures(engine, organisation)
    rate = figures.figures_of(
        ["dispute_resolution_rate"],
        [Scope("person", "cs.a"), Scope("team", "live")],
        NOVEMBER,
        now=NOW,
    )
    assert rate[Scope("person", "cs.a")]["dispute_resolution_rate"].value == Decimal("0.75")
    assert rate[Scope("team", "live")]["dispute_resolution_rate"].value == Decimal("0.5")


def test_the_morning_digests_show_imported_metrics_with_their_targets(
    engine: Engine, tmp_path: Path
) -> None:
    organisation = load_organisation(_template(tmp_path))
    _service_data(engine, organisation, tmp_path)
    figures = Figures(engine, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    digests = Digests(organisation, engine, figures, plans)
    # 09:00 on 20 November in Shenzhen: yesterday the 19th (cs.a: 300 chats in 30 s).
    morning = int(datetime(2026, 11, 20, 9, tzinfo=SHANGHAI).timestamp())
    [team_post, *personal] = digests.morning(
        team_digest(figures, plans, "live", now=morning), now=morning
    )
    # The team: its agents' chats weighted together, yesterday and month to date (no team
    # target), and its shops' dispatch.
    fields = {f.label: f.value for f in team_post.reply.fields}
    # (300 × 30 s + 100 × 90 s) ÷ 400 = 45 s; the month: 270,000 s ÷ 4,000 chats = 67.5 s.
    assert fields["首次回复时间"] == "昨日 45 秒 · 本月 68 秒", fields
    assert fields["发货及时率"] == "昨日 94.5% · 本月 94.5%", fields
    assert "首次回复时间: 昨日 45 秒 · 本月 68 秒" in team_post.reply.text
    assert "视频播放量" not in fields  # nothing imported, no target: not shown
    watched = {(w.metric, w.scope.id) for w in team_post.watched}
    assert ("first_response_seconds", "live") in watched
    # The agent, privately: what her scorecard holds, against her targets; no GMV lines.
    posts = {post.person: post.reply for post in personal}
    agent = {f.label: f.value for f in posts["cs.a"].fields}
    assert agent["首次回复时间"] == (
        "昨日 30 秒（目标 60 秒，完成 200%） · 本月 47 秒（目标 60 秒，完成 127%）"
    ), agent
    assert agent["12小时回复率"].startswith("昨日 97.0%（目标 95.0%，完成 102%）")
    assert "昨日 GMV" not in agent and posts["cs.a"].private
    # The operator: GMV as before, and the shops' on-time dispatch against the role's 97 %.
    operator = {f.label: f.value for f in posts["ops.a"].fields}
    assert "昨日 GMV" in operator
    assert operator["发货及时率"].startswith("昨日 94.5%（目标 97.0%，完成 97%）"), operator
    # A streamer is measured on none of them: no imported lines.
    assert not {"首次回复时间", "发货及时率"} & {f.label for f in posts["host.a"].fields}


def test_the_template_with_demo_data_measures_every_role(engine: Engine, tmp_path: Path) -> None:
    """The issue's "done when" on demo-style data: `kpibot init --template tiktok-live-team`,
    the demo generator's data for it (customer service's and the shops' metric_values
    included), then the agent's first response time with target and score, the operator's
    dispatch alert and the new hire's ramp."""
    organisation = load_organisation(_template(tmp_path))
    data = generate(organisation, tmp_path / "org", tmp_path / "data", days=20, now=NOW, seed=42)
    for label, path in data.files.items():
        kind = KINDS[FILE_KINDS.get(label, label)]
        assert import_file(engine, organisation, kind, path, now=NOW).ok, label
    figures = Figures(engine, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    # The agent asks without a period: imported daily figures answer for the month so far.
    dialog = Dialog(engine, organisation, NOW)
    reply = dialog.answer("cs.a", "我的首次回复时间")
    mine = figures.figure("first_response_seconds", Scope("person", "cs.a"), NOVEMBER, now=NOW)
    assert mine.value is not None and 20 < mine.value < 100
    assert "本月" in reply.text and "目标 60 秒" in reply.text, reply.text
    card = scorecard(figures, plans, "cs.a", NOVEMBER, now=NOW)
    assert card is not None and card.score is not None
    first = next(i for i in card.items if i.item.metric == "first_response_seconds")
    assert first.points is not None and first.points > 0
    # Streamers hosted the shops' lives, so their process KPIs have values and targets.
    host = figures.figure("effective_live_seconds", Scope("person", "host.a"), NOVEMBER, now=NOW)
    assert host.value and plans.progress(host, NOW).target == 432000
    # A shop dispatching late this week alerts its operator, nobody else.
    chat = FakeChat("slack", private_in_place=True)
    bot = bot_for(engine, organisation, {"slack": chat}, fixed_clock(NOW))
    alerts: AlertService = bot.service("alerts")
    alerts.run(NOW)
    bot.sender.drain()
    late = [a for a in alerts.store.open_alerts() if a.rule.startswith("dispatch-late")]
    assert late, "the demo data has a shop dispatching late"
    assert all([p.id for p in alerts.owners(a)] == ["ops.a"] for a in late)
    told = {target.user for _, target in chat.sent if target.user}
    assert CHAT_IDS["ops.a"] in told
    # host.c was hired on 1 November: on the 15th (a Sunday, weight 1.1 of November's 31.9
    # with 11.11 at ×3) her GMV target is at the first ramp step, 60 %.
    fifteenth = int(datetime(2026, 11, 15, 14, tzinfo=SHANGHAI).timestamp())
    today = figures.figure(
        "gmv", Scope("person", "host.c"), day_of(date(2026, 11, 15), "Asia/Shanghai"), now=NOW
    )
    target = plans.progress(today, fifteenth).target
    expected = Decimal(800000) * Decimal("1.1") / Decimal("31.9") * Decimal("0.6")
    assert target is not None and abs(target - expected) < Decimal("1e-18")


def test_the_weekly_report_shows_imported_metrics(engine: Engine, tmp_path: Path) -> None:
    organisation = load_organisation(_template(tmp_path))
    _service_data(engine, organisation, tmp_path)
    figures = Figures(engine, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    # The week of 9–15 November, reported on Monday the 16th.
    monday = int(datetime(2026, 11, 16, 9, 30, tzinfo=SHANGHAI).timestamp())
    week = last_week(monday, "Asia/Shanghai")
    post = Digests(organisation, engine, figures, plans).recap(
        recap(figures, plans, "live", week, now=monday), "weekly"
    )
    fields = {f.label: f.value for f in post.reply.fields}
    # Both agents' seven days: (700 × 50 s + 700 × 90 s) ÷ 1,400 chats.
    assert fields["首次回复时间"] == "70 秒" and fields["接待量"] == "1,400", fields
    assert fields["发货及时率"] == "94.5%"
    assert "首次回复时间: 70 秒" in post.reply.text
    assert ("first_response_seconds", "live") in {(w.metric, w.scope.id) for w in post.watched}
