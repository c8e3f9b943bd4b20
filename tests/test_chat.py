"""Dialogs with the bot through the real pipeline, router and engine, in Chinese and English."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from bot.chat.request import Subject
from bot.console import ConsoleChat
from kpi_engine.clock import fixed_clock
from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.figures import Figures, Scope, format_value
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import Organisation
from kpi_engine.periods import day_of, month_of, week_of
from tests.conftest import EXAMPLE_CONFIG
from tests.fakechat import Dialog, FakeChat, bot_for

END = date(2026, 11, 12)
# 15:00 on 12 November in Shanghai: sz-live's "today" is the 12th.
NOW = int(datetime(2026, 11, 12, 15, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
GROUP = "C0SZLIVE"
REFUSED_ZH = "没有找到，或你没有权限查看这些数据。"
REFUSED_EN = "You don't have access to those numbers, or there is nothing by that name."


@pytest.fixture
def dialog(engine: Engine, organisation: Organisation, tmp_path: Path) -> Dialog:
    data = generate(organisation, EXAMPLE_CONFIG, tmp_path, days=10, end=END, seed=21)
    for label, path in data.files.items():
        assert import_file(engine, organisation, KINDS[FILE_KINDS.get(label, label)], path).ok
    return Dialog(engine, organisation, NOW)


def money(engine: Engine, organisation: Organisation, scope: Scope, period: object) -> str:
    figure = Figures(engine, organisation).figure("gmv", scope, period, now=NOW)  # type: ignore[arg-type]
    return format_value(figure.value, figure.unit, figure.currency)


def test_progress_in_chinese_and_english(
    dialog: Dialog, engine: Engine, organisation: Organisation
) -> None:
    today = day_of(END, "Asia/Shanghai")
    expected = money(engine, organisation, Scope("person", "li.na"), today)
    zh = dialog.answer("li.na", "今天GMV多少")
    assert zh.language == "zh" and expected in zh.text and "目标" in zh.text
    assert "完成" in zh.text and "进度" in zh.text and "组内第" in zh.text
    assert zh.progress and zh.context and "暂定" in zh.context
    en = dialog.answer("li.na", "what's my GMV today?")
    assert en.language == "en" and expected in en.text and "target" in en.text
    assert "pace" in en.text and "in the team" in en.text
    # The command syntax says the same.
    assert dialog.answer("li.na", "/kpi gmv today").text == en.text


def test_just_after_midnight_the_pace_is_too_early_to_tell(
    dialog: Dialog, engine: Engine, organisation: Organisation
) -> None:
    midnight = int(datetime(2026, 11, 12, 0, 20, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
    early = Dialog(engine, organisation, midnight)
    zh = early.answer("li.na", "今天GMV多少")
    assert "目标" in zh.text and "进度" in zh.text and "时间尚早" in zh.text
    assert "预计" not in zh.text  # no projection from twenty minutes of sales
    en = early.answer("li.na", "my GMV today")
    assert "pace" in en.text and "too early to tell" in en.text
    behind = early.answer("wang.fang", "今天谁落后进度").text
    assert "时间尚早" in behind and "没有目标" not in behind
    # By mid-afternoon the pace is stated.
    assert "时间尚早" not in dialog.answer("li.na", "今天GMV多少").text


def test_personal_numbers_asked_in_a_group_are_answered_privately(
    engine: Engine, organisation: Organisation, dialog: Dialog
) -> None:
    sent = dialog.say("li.na", "今天GMV多少", channel=GROUP)
    assert len(sent) == 1 and sent[0][1].private and sent[0][1].user == "U07LINA0001"
    # A platform without in-channel private messages: a direct message, and a note in the group.
    other = Dialog(engine, organisation, NOW, platform="slack", private_in_place=False)
    sent = other.say("li.na", "my GMV today", channel=GROUP)
    assert [t.private for _, t in sent] == [True, False]
    assert sent[1][0].text == "I've answered you privately." and "GMV" not in sent[1][0].text


def test_team_ranking_shows_members_names_but_managers_values(
    dialog: Dialog, engine: Engine, organisation: Organisation
) -> None:
    member = dialog.answer("li.na", "本周排名")
    assert member.table is not None and len(member.table.rows) == 4  # the team's streamers
    mine = [row for row in member.table.rows if "（你）" in row[1]]
    assert len(mine) == 1 and "CNY" in mine[0][2]
    assert all(row[2] == "·" for row in member.table.rows if row not in mine)
    week = week_of(END, "Asia/Shanghai")
    zhang = money(engine, organisation, Scope("person", "zhang.wei"), week)
    manager = dialog.answer("wang.fang", "team ranking this week")
    assert manager.language == "en" and manager.table is not None
    assert any(row[2] == zhang for row in manager.table.rows)


def test_a_member_cannot_see_a_colleague_but_a_manager_can(
    dialog: Dialog, engine: Engine, organisation: Organisation
) -> None:
    refused = dialog.answer("li.na", "张伟今天GMV多少")
    assert refused.text == REFUSED_ZH and "张伟" not in refused.text
    assert dialog.answer("li.na", "zhang.wei gmv today").text == REFUSED_EN
    today = day_of(END, "Asia/Shanghai")
    allowed = dialog.answer("wang.fang", "张伟今天GMV多少")
    assert money(engine, organisation, Scope("person", "zhang.wei"), today) in allowed.text
    assert dialog.answer("emily.carter", "张伟今天GMV多少").text == REFUSED_ZH


def test_why_compare_breakdown_and_score(dialog: Dialog) -> None:
    why = dialog.answer("wang.fang", "为什么GMV下降了")
    assert why.language == "zh" and why.table is not None
    # Drivers named as the catalogue names their metrics, and the orders live views do not
    # cover stated as such.
    assert [row[0] for row in why.table.rows] == [
        "观看次数",
        "直播观看转化率",
        "直播客单价",
        "其他渠道（无流量数据）",
    ]
    assert "主要原因" in why.text and "直播观看只覆盖" in why.text
    assert dialog.answer("wang.fang", "why did GMV drop yesterday").table is not None
    compare = dialog.answer("li.na", "本周GMV环比")
    assert "→" in compare.text and "对比" in compare.text
    assert "vs" in dialog.answer("li.na", "compare my GMV this week").text
    daily = dialog.answer("li.na", "本周GMV按天")
    assert daily.table is not None and daily.table.rows[0][0] == "2026-11-09"
    shops = dialog.answer("wang.fang", "GMV by shop this week")
    team_shops = {s.name for s in dialog.organisation.shops.values() if s.team == "sz-live"}
    assert shops.table is not None and {row[0] for row in shops.table.rows} == team_shops
    assert dialog.answer("li.na", "GMV by person this week").text == REFUSED_EN
    score = dialog.answer("li.na", "我的绩效")
    assert "评分卡" in score.text and "奖金" in score.text and score.table is not None
    assert "Score" in dialog.answer("li.na", "my bonus this month").text


def test_notes_alerts_help_and_unknown_text(dialog: Dialog) -> None:
    noted = dialog.answer("li.na", "加备注 TikTok算法调整 昨天")
    assert "2026-11-11" in noted.text and "TikTok算法调整" in noted.text
    listed = dialog.answer("wang.fang", "本月备注")
    assert listed.table is not None and listed.table.rows[0][1] == "TikTok算法调整"
    assert "algorithm" in dialog.answer("emily.carter", "add note algorithm change").text
    assert "No notes." not in dialog.answer("emily.carter", "notes this month").text
    assert "告警" in dialog.answer("li.na", "告警").text
    assert "alert" in dialog.answer("li.na", "alerts").text
    help_zh = dialog.answer("li.na", "帮助")
    assert help_zh.text.startswith("可以这样问我") and "「本周排名」" in help_zh.text
    assert all(len(line) < 60 for line in help_zh.text.splitlines())  # fits a phone
    assert dialog.answer("li.na", "ping").text == "pong"
    assert dialog.answer("li.na", "在吗").text == "在的！"
    assert "ranking" in dialog.answer("jessica.lee", "help").text
    unknown = dialog.answer("jessica.lee", "rnking plz")
    assert unknown.text.startswith("Sorry, I didn't understand that. Did you mean")
    assert "“team ranking this week”" in unknown.text
    assert dialog.answer("li.na", "天气怎么样呀").text.startswith("没听懂")


def test_a_period_that_makes_no_sense_is_explained_in_the_askers_language(dialog: Dialog) -> None:
    zh = dialog.answer("li.na", "2026-13的GMV")
    assert zh.text.startswith("「2026-13」不是有效的日期") and "month" not in zh.text
    en = dialog.answer("jessica.lee", "gmv 2026-13")
    assert en.text.startswith("“2026-13” is not a date")


def test_an_unknown_user_is_told_whom_to_ask(dialog: Dialog) -> None:
    reply = dialog.answer("li.na", "今天GMV多少", user_id="U0STRANGER")
    assert reply.text.startswith("你还没有在 kpibot 登记") and "slack:U0STRANGER" in reply.text
    english = dialog.answer("li.na", "my gmv", user_id="U0STRANGER")
    assert "not registered" in english.text


def test_a_duplicate_delivery_is_answered_once(dialog: Dialog) -> None:
    message = dialog.message("li.na", "今天GMV多少", event_id="Ev-dup")
    assert dialog.pipeline.accept(message)
    assert not dialog.pipeline.accept(message)
    assert len(dialog.chat.sent) == 1
    # Concurrent deliveries of one event: exactly one wins.
    racing = dialog.message("li.na", "my gmv", event_id="Ev-race")
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(dialog.pipeline.accept(racing)))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True] and len(dialog.chat.sent) == 2


def test_a_failing_handler_gives_a_friendly_reply(dialog: Dialog, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE rollups"))
    reply = dialog.answer("li.na", "今天GMV多少")
    assert reply.text.startswith("抱歉，出了点问题") and "Traceback" not in reply.text


def test_the_parser_reads_periods_metrics_and_subjects(dialog: Dialog) -> None:
    asker = dialog.organisation.people["li.na"]

    def ask(words: str) -> tuple[str, str | None, str | None, Subject | None]:
        found = dialog.router.parse(words, asker, "slack", NOW)
        return found.intent, found.metric, found.period, found.subject

    assert ask("今天GMV多少") == ("progress", "gmv", "today", None)
    assert ask("我的进度") == ("progress", None, None, Subject("me"))
    assert ask("本周排名") == ("ranking", None, "this_week", None)
    assert ask("上周ROAS") == ("progress", "roas", "last_week", None)
    assert ask("11月的退货率") == ("progress", "refund_rate", "2026-11", None)
    assert ask("10月的退货率")[2] == "2026-10" and ask("12月客单价")[2] == "2025-12"
    assert ask("为什么GMV下降了")[0] == "why"
    assert ask("how am I doing this week") == ("progress", None, "this_week", None)
    assert ask("team ranking yesterday") == ("ranking", None, "yesterday", Subject("team"))
    assert ask("why did GMV drop") == ("why", "gmv", None, None)
    assert ask("我们组最近7天成交额") == ("progress", "gmv", "last_7_days", Subject("team"))
    # One name, one rate: 转化率 is the live conversion the GMV explanation uses; the
    # click-to-order rate has its own name.
    assert ask("2026-11-10 转化率")[1:3] == ("live_conversion_rate", "2026-11-10")
    assert ask("2026-11-20 转化率")[2] is None  # after END: not yet, and said so
    assert ask("昨天直播间转化率")[1:3] == ("live_conversion_rate", "yesterday")
    assert ask("昨天点击成交率")[1:3] == ("click_to_order_rate", "yesterday")
    assert ask("11月20日 客单价")[2] is None  # after END: not yet this year, and said so
    assert ask("<@U07ZHANGWEI> gmv today")[3] == Subject("person", "zhang.wei")
    assert ask("李娜本月业绩")[3] == Subject("person", "li.na")
    assert ask("tts-us-01 gmv last month")[3] == Subject("shop", "tts-us-01")
    assert ask("net gmv november")[1:3] == ("net_gmv", "2026-11")
    # A day named in English without a year is this year's, as in Chinese.
    assert ask("Nov 10 GMV")[1:3] == ("gmv", "2026-11-10")
    assert ask("GMV on Nov 20")[2] is None and ask("20 November gmv")[2] is None
    assert dialog.router.parse("Nov 10 GMV", asker, "slack", NOW).language == "en"
    assert ask("Feb 30 GMV")[2] is None
    assert ask("gmv November 2025")[2] == "2025-11" and ask("Nov 5, 2025 gmv")[2] == "2025-11-05"


def test_an_unknown_metric_is_asked_back_by_the_name_as_written(dialog: Dialog) -> None:
    for said, name in (
        ("上月发货及时率", "「发货及时率」"),
        ("库存周转天数", "「库存周转天数」"),
        ("我的客诉率", "「客诉率」"),
    ):
        reply = dialog.answer("wang.fang", said)
        assert name in reply.text and "成交额" not in (reply.headline or ""), said


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(
        alphabet=st.sampled_from(
            list("今天GMV多少我的进度排名为什么 abcxyz?/kpi12-本周上月备注帮助@<>")
        ),
        max_size=30,
    )
)
def test_any_text_gets_a_reply(dialog: Dialog, words: str) -> None:
    message = dialog.message("li.na", words)
    reply = dialog.router.route(message, now=NOW).result.reply
    assert reply is not None and reply.text.strip() and not reply.text.startswith("抱歉")


def test_the_console_chat_renders_and_presses_buttons(
    dialog: Dialog, engine: Engine, organisation: Organisation
) -> None:
    printed: list[str] = []
    console = ConsoleChat(
        organisation, engine, "li.na", write=printed.append, clock=fixed_clock(NOW)
    )
    console.run(iter(["今天GMV多少", "1", "9", ""]))
    first = printed[0]
    assert "李娜 · 今天 (2026-11-12) · 成交额" in first and "[██" in first
    assert "[1] 团队排名" in first and "[3] 本月绩效" in first
    assert "名次" in printed[1] and "李娜（你）" in printed[1]  # button 1 asked "本周排名"
    assert len(printed) == 3  # "9" is no button: it was asked as text
    assert printed[2].startswith("没听懂")


def test_only_gmv_cards_offer_the_gmv_explanation(dialog: Dialog) -> None:
    def labels(said: str) -> list[str]:
        reply = dialog.router.route(dialog.message("li.na", said), now=NOW).result.reply
        assert reply is not None
        return [button.label for button in reply.buttons]

    assert "为什么变了" in labels("今天GMV多少")
    refund = labels("今天退款率")
    assert "团队排名" in refund and "为什么变了" not in refund
    assert labels("本周排名") == ["📊 看板"]  # the clicker's own dashboard, privately


def test_a_marketplace_with_several_or_no_shops_is_asked_back_never_the_company(
    dialog: Dialog,
) -> None:
    def asked(said: str) -> tuple[str, list[str], list[str]]:
        reply = dialog.router.route(dialog.message("chen.hao", said), now=NOW).result.reply
        assert reply is not None
        return reply.text, [b.label for b in reply.buttons], [b.value for b in reply.buttons]

    text, labels, values = asked("tiktok today")  # two TikTok shops in the example
    assert text.startswith("Several of our shops are on “tiktok”")
    assert labels == ["TikTok Shop US — Glow Beauty", "TikTok Shop UK — Glow Beauty"]
    assert values == ["tts-us-01 today", "tts-gb-01 today"]  # each asks again by the shop's id
    text, labels, _ = asked("shopee today")  # none on Shopee: every shop is offered
    assert text.startswith("I don't know a shop called “shopee”") and len(labels) == 3
    text, _, _ = asked("amazon today")  # exactly one: that shop
    assert text.startswith("Amazon JP — Glow Beauty 公式 · today")


@pytest.mark.parametrize("said", ["top 3", "前三", "top 3 this week"])
def test_a_count_alone_asks_for_a_ranking(dialog: Dialog, said: str) -> None:
    request = dialog.router.route(dialog.message("wang.fang", said), now=NOW).request
    assert request is not None and request.intent == "ranking" and request.top == 3


def test_replies_can_be_worked_out_by_a_worker(
    dialog: Dialog, engine: Engine, organisation: Organisation
) -> None:
    chat = FakeChat()
    with ThreadPoolExecutor(max_workers=2) as workers:
        bot = bot_for(engine, organisation, {"slack": chat}, fixed_clock(NOW))
        pipeline = bot.pipeline
        pipeline.workers = workers
        assert pipeline.accept(dialog.message("li.na", "今天GMV多少"))
        assert pipeline.accept(dialog.message("jessica.lee", "my GMV today"))
    assert sorted(reply.language for reply, _ in chat.sent) == ["en", "zh"]


@pytest.mark.parametrize(
    "said",
    [
        "9999-12-31 GMV",
        "0000-01 GMV",
        "0001-01-01 同比",
        "1900-01-01 GMV 同比",
        "确认 99999999999999999999999",
        "接受 99999999999999999999999 ok",
        "加备注 \ud800 坏字符",
        "申诉 昨天GMV 应该是 1000000000000000000000000000",
        "x" * 50_000,
    ],
)
def test_absurd_input_gets_a_clear_answer_and_changes_nothing(
    dialog: Dialog, engine: Engine, said: str
) -> None:
    reply = dialog.answer("li.na", said)
    assert (
        reply.text.strip()
        and not reply.text.startswith("抱歉")
        and "Sorry, something" not in reply.text
    )
    with engine.connect() as conn:
        for table in ("appeals", "corrections"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def test_an_order_id_pasted_without_orders_is_evidence_not_the_claim(
    dialog: Dialog, engine: Engine
) -> None:
    reply = dialog.answer("li.na", "appeal gmv 2026-11-10 12000 5791234579123457912345791234")
    assert "12,000.00" in reply.text
    with engine.connect() as conn:
        claimed, evidence = conn.execute(text("SELECT claimed_value, evidence FROM appeals")).one()
    assert claimed == "12000" and "5791234579123457912345791234" in evidence


def test_the_dashboard_link_is_handed_privately_to_the_asker_alone(
    engine: Engine, organisation: Organisation, dialog: Dialog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a server secret there is no link, and the reply says what the admin must set.
    assert "KPIBOT_SECRET_KEY" in dialog.answer("li.na", "看板").text
    monkeypatch.setenv("KPIBOT_SECRET_KEY", "s3cret-for-links")
    monkeypatch.setenv("KPIBOT_PUBLIC_URL", "https://kpi.example")
    signed = Dialog(engine, organisation, NOW)
    [(reply, target)] = signed.say("li.na", "看板", channel=GROUP)
    assert reply.private and target.user == "U07LINA0001"
    assert "https://kpi.example/dashboard/login/" in reply.text and "10 分钟" in reply.text
    english = signed.answer("jessica.lee", "open dashboard")
    assert english.language == "en" and "/dashboard/login/" in english.text


def test_how_fresh_the_data_is_per_shop_in_the_askers_language(
    dialog: Dialog, engine: Engine
) -> None:
    # The UK shop is synced from TikTok Shop up to 14:30 (Shanghai); the others only imported.
    synced = int(datetime(2026, 11, 12, 14, 30, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sync_cursors (shop_id, source, high_water, pages, rows, errors, "
                "due_at, last_success) VALUES ('tts-gb-01', 'orders', :at, 3, 120, 0, 0, :at)"
            ),
            {"at": synced},
        )
    chinese = dialog.answer("li.na", "数据更新到几点")
    assert chinese.language == "zh" and chinese.table is not None
    rows = {(shop, source): until for shop, source, until in chinese.table.rows}
    assert rows[("TikTok Shop UK — Glow Beauty", "orders")] == "11月12日 14:30"
    # sz-live's other shop was imported, not synced: its row says so. No other team's shop.
    assert [source for shop, source in rows if shop.startswith("Amazon JP")] == ["导入"]
    assert not [shop for shop, _ in rows if "US" in shop]
    english = dialog.answer("jessica.lee", "how fresh is the data")
    assert english.language == "en" and english.table is not None
    assert [shop for shop, _, _ in english.table.rows] == ["TikTok Shop US — Glow Beauty"]
    japanese = dialog.answer("li.na", "データ更新")
    assert japanese.language == "ja" and japanese.table is not None
    assert ("TikTok Shop UK — Glow Beauty", "orders", "11月12日 14:30") in japanese.table.rows
    assert japanese.table.columns == ("店舗", "データ", "更新時刻")


def test_who_is_behind_pace_for_a_manager_and_for_a_member(dialog: Dialog) -> None:
    for said in ("who is behind pace", "本月谁落后进度", "進捗が遅れている人"):
        reply = dialog.answer("wang.fang", said)
        assert reply.table is not None, said
        # Furthest behind first, each under 100 % of the pace their target expects by now.
        paces = [int(row[1].rstrip("%")) for row in reply.table.rows]
        assert paces == sorted(paces) and all(p < 100 for p in paces) and paces, said
    members = {row[0] for row in dialog.answer("wang.fang", "who is behind pace").table.rows}  # type: ignore[union-attr]
    assert len(members) >= 2
    # A member learns only about herself, privately even when asked in the group.
    [(mine, target)] = dialog.say("li.na", "谁落后进度", channel=GROUP)
    assert mine.private and target.user == "U07LINA0001"
    assert mine.table is None or {row[0] for row in mine.table.rows} <= {"李娜"}


def test_a_cards_progress_bar_shortens_large_amounts_as_the_reader_reads_them(
    dialog: Dialog,
) -> None:
    chinese = dialog.answer("wang.fang", "本月GMV")
    [bar] = chinese.progress
    actual, target = bar.caption.split(" / ")
    assert actual.startswith("¥") and actual.endswith("万") and target == "¥450万"
    english = dialog.answer("emily.carter", "team gmv this month")
    [bar] = english.progress
    assert bar.caption.split(" / ")[1] == "$420K"
    japanese = dialog.answer("li.na", "チームの今月の売上")
    [bar] = japanese.progress
    assert bar.caption.endswith(" / 元450万")


def test_a_measure_named_in_english_that_kpibot_lacks_is_asked_back_never_gmv(
    dialog: Dialog,
) -> None:
    for said in ("inventory turnover days this month", "on-time shipping rate last month"):
        reply = dialog.answer("jessica.lee", said)
        assert "I don't know the metric" in reply.text and not reply.fields, said
    # Measures it has are still answered.
    assert dialog.answer("jessica.lee", "refund rate yesterday").fields


def test_a_name_kpibot_does_not_know_is_asked_back_never_someone_elses_numbers(
    dialog: Dialog,
) -> None:
    for asker, said in (("zhang.wei", "小王今天GMV"), ("wang.fang", "娜姐今天多少")):
        reply = dialog.answer(asker, said)
        assert not reply.fields and not reply.progress, said  # no figure of anyone
    # A known name still is: 李娜 by her name.
    assert dialog.answer("wang.fang", "李娜今天GMV").fields


def test_a_period_compared_with_an_earlier_one_is_a_comparison(dialog: Dialog) -> None:
    asker = dialog.organisation.people["zhang.wei"]
    for said in ("GMV跟上周比", "本周vs上周", "gmv vs last week", "这周跟上周比"):
        found = dialog.router.parse(said, asker, "slack", NOW)
        assert (found.intent, found.period, found.unknown) == ("compare", "this_week", None), said
    reply = dialog.answer("zhang.wei", "gmv this month vs last month")
    assert "2026-11 vs 2026-10-01..2026-10-12" in (reply.headline or ""), reply.headline


@pytest.mark.parametrize(
    "said",
    [
        "最近24小时GMV",
        "周末GMV",
        "方便看下今天GMV",
        "方便的话看下GMV",
        "老板要看今天GMV",
        "周一GMV",
        "江苏店本月GMV",
    ],
)
def test_words_that_begin_like_a_name_are_not_taken_for_one(dialog: Dialog, said: str) -> None:
    found = dialog.router.parse(said, dialog.organisation.people["wang.fang"], "slack", NOW)
    assert found.unknown is None or found.unknown.kind != "person", said


@pytest.mark.parametrize(
    "said", ["11月20日 客单价", "11月20日GMV", "11/20 GMV", "GMV on Nov 20", "20 November gmv"]
)
def test_a_day_still_to_come_this_year_is_asked_back_offering_last_years(
    dialog: Dialog, said: str
) -> None:
    found = dialog.router.parse(said, dialog.organisation.people["li.na"], "slack", NOW)
    assert found.period is None and found.unknown is not None
    assert found.unknown.kind == "period" and found.unknown.reason == "future"
    assert found.unknown.closest == (("2025-11-20", "2025-11-20"),)


def test_the_day_a_year_earlier_is_one_click_away(dialog: Dialog) -> None:
    reply = dialog.answer("li.na", "11月20日GMV")
    assert reply.text.startswith("「11月20日」还没到") and "2025-11-20" in reply.text
    assert not reply.fields and [b.value for b in reply.buttons] == ["2025-11-20 gmv"]
    again = dialog.answer("li.na", reply.buttons[0].value)
    assert "2025-11-20" in (again.headline or "") and again.fields
    english = dialog.answer("jessica.lee", "Nov 20")
    assert english.text.startswith("“nov 20” has not happened yet")
    assert [b.value for b in english.buttons] == ["2025-11-20"]
    # A day and month that have begun this year are this year's, answered.
    earlier = dialog.answer("li.na", "11月5日GMV")
    assert "2026-11-05" in (earlier.headline or "") and earlier.fields


@pytest.mark.parametrize(
    ("now", "weekend", "last", "this"),
    [
        # Thursday: the last weekend; this one is still to come.
        ("2026-11-12", "2026-11-07..2026-11-08", "2026-11-07..2026-11-08", None),
        # Saturday and Sunday: the weekend under way, up to today; the last one a week before.
        (
            "2026-11-14",
            "2026-11-14..2026-11-14",
            "2026-11-07..2026-11-08",
            "2026-11-14..2026-11-14",
        ),
        (
            "2026-11-15",
            "2026-11-14..2026-11-15",
            "2026-11-07..2026-11-08",
            "2026-11-14..2026-11-15",
        ),
        # Monday: the weekend just past.
        ("2026-11-16", "2026-11-14..2026-11-15", "2026-11-14..2026-11-15", None),
    ],
)
def test_the_weekend_is_the_one_under_way_else_the_last(
    dialog: Dialog, now: str, weekend: str, last: str, this: str | None
) -> None:
    asker = dialog.organisation.people["li.na"]
    at = int(datetime.fromisoformat(f"{now}T15:00+08:00").timestamp())

    def period(said: str) -> str | None:
        return dialog.router.parse(said, asker, "slack", at).period

    assert period("周末GMV") == weekend and period("gmv over the weekend") == weekend
    assert period("週末の売上") == weekend
    assert period("上周末GMV") == last and period("gmv last weekend") == last
    assert period("先週末の売上") == last
    assert period("这周末GMV") == this and period("gmv this weekend") == this
    if this is None:
        found = dialog.router.parse("gmv this weekend", asker, "slack", at)
        assert found.unknown is not None and found.unknown.reason == "future"
        assert found.unknown.closest == ((weekend, weekend),)  # the last one, offered


@pytest.mark.parametrize(
    ("asker", "said", "answer"),
    [
        ("li.na", "最近24小时GMV", "「最近24小时」：数字按整天统计"),
        ("li.na", "24小时内GMV", "「24小时内」：数字按整天统计"),
        ("jessica.lee", "gmv last 24 hours", "“last 24 hours”: figures are counted by whole days"),
        ("li.na", "直近24時間の売上", "「直近24時間」：数字は日単位で集計しており"),
    ],
)
def test_hours_are_asked_back_never_answered_as_today(
    dialog: Dialog, asker: str, said: str, answer: str
) -> None:
    reply = dialog.answer(asker, said)
    assert reply.text.startswith(answer) and not reply.fields, reply.text


@pytest.mark.parametrize(
    ("asker", "said", "offered"),
    [
        ("wang.fang", "张三今天GMV", None),
        ("wang.fang", "张三的GMV", None),
        ("zhang.wei", "李哪今天GMV", "李娜"),
        ("wang.fang", "丽娜今天GMV", "李娜"),
        ("chen.hao", "马库斯本月GMV", None),
        ("emily.carter", "jess gmv today", "Jessica Lee"),
    ],
)
def test_a_stranger_or_a_misspelt_name_is_asked_back_with_the_closest(
    dialog: Dialog, asker: str, said: str, offered: str | None
) -> None:
    reply = dialog.answer(asker, said)
    assert not reply.fields and not reply.progress and reply.table is None, reply.text
    labels = [button.label for button in reply.buttons]
    if offered is not None:
        assert labels[0] == offered, labels
    request = dialog.router.parse(said, dialog.organisation.people[asker], "slack", NOW)
    assert request.unknown is not None and request.unknown.kind == "person"


def test_every_team_ranked_and_broken_down_for_an_admin_in_the_companys_currency(
    dialog: Dialog, engine: Engine, organisation: Organisation
) -> None:
    # The company's days (Shanghai's) and currency: every team's value compares.
    november = month_of(END, "Asia/Shanghai")
    teams = [Scope("team", "sz-live"), Scope("team", "la-ops")]
    figures = Figures(engine, organisation)
    in_cny = figures.figures_of(["gmv"], teams, november, now=NOW, currency="CNY")
    ranking = dialog.answer("chen.hao", "本月各团队GMV排名")
    assert ranking.table is not None and ranking.table.columns[:2] == ("名次", "团队")
    rows = {row[1]: row[2] for row in ranking.table.rows}
    assert set(rows) == {"深圳直播组", "LA Operations"}
    for team in teams:
        value = in_cny[team]["gmv"]
        assert rows[organisation.teams[team.id].name] == format_value(value.value, "money", "CNY")
    assert [row[0] for row in ranking.table.rows] == ["1", "2"]
    breakdown = dialog.answer("chen.hao", "本月各团队GMV")
    assert breakdown.table is not None and len(breakdown.table.rows) == 2
    la = dict(breakdown.table.rows)["LA Operations"]
    assert "USD" in la and "≈" in la and "CNY" in la  # its own currency, and the company's
    # A manager is answered about the team she manages; a member is refused.
    manager = dialog.answer("wang.fang", "本月各团队GMV")
    assert manager.table is not None and [row[0] for row in manager.table.rows] == ["深圳直播组"]
    assert dialog.answer("li.na", "各团队排名").text == REFUSED_ZH
    assert dialog.answer("li.na", "本月各团队GMV").text == REFUSED_ZH


@pytest.mark.parametrize(
    ("said", "team"),
    [
        ("Emily的团队本月GMV", "LA Operations"),
        ("emily's team gmv this month", "LA Operations"),
        ("Emilyのチームの今月の売上", "LA Operations"),
        ("王芳的团队本月GMV", "深圳直播组"),
        ("王芳组本月GMV", "深圳直播组"),
    ],
)
def test_a_team_is_named_by_its_manager(dialog: Dialog, said: str, team: str) -> None:
    reply = dialog.answer("chen.hao", said)
    assert (reply.headline or "").startswith(f"{team} · "), reply.headline
