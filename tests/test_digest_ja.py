"""A Japanese team's digests: sz-live with `language: ja` gets its morning stand-up, day-end
recap, weekly report, revision notices and chart in Japanese, numbers and days written as the
Japanese locale writes them; a member whose own language is Chinese still gets Chinese."""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from bot.charts import LABELS, chart_font, render_month_chart
from bot.cli import app
from bot.compose import Bot
from bot.features.digests.dates import LocalDay
from bot.features.digests.render import Post
from bot.i18n import text as message
from kpi_engine.annotations import add_note
from kpi_engine.clock import fixed_clock
from kpi_engine.digest import DayPoint
from kpi_engine.organisation import Organisation, load_organisation
from tests.fakechat import Dialog, FakeChat, bot_for
from tests.workspaces import example_config, load_demo

SHANGHAI = ZoneInfo("Asia/Shanghai")
END = date(2026, 11, 16)
# Words only the Chinese (or English) digest uses: none may reach a Japanese reader.
NOT_JAPANESE = ("早报", "复盘", "周报", "本月", "目标", "昨日 GMV", "排名", "数据更新", "morning")


def at(day: date, hour: int, minute: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI).timestamp())


def japanese_config(tmp_path: Path) -> Path:
    """The example organisation with sz-live reading Japanese and li.na Chinese."""
    return example_config(tmp_path, sz_live_language="ja", li_na_language="zh")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return japanese_config(tmp_path)


@pytest.fixture
def japanese(config: Path) -> Organisation:
    organisation = load_organisation(config)
    assert organisation.teams["sz-live"].language == "ja"
    return organisation


@pytest.fixture
def workspace(engine: Engine, japanese: Organisation, tmp_path: Path) -> Engine:
    load_demo(engine, japanese, tmp_path / "data", days=16, end=END, seed=5)
    add_note(engine, "team:sz-live", date(2026, 11, 11), "独身の日セール", "wang.fang", now=0)
    return engine


def posts(engine: Engine, organisation: Organisation, job: str, nominal: int) -> list[Post]:
    bot: Bot = bot_for(engine, organisation, {}, fixed_clock(nominal))
    return list(bot.service("digests").posts(bot.scheduler.jobs[job], nominal))


def fields(post: Post) -> dict[str, str]:
    return {f.label: f.value for f in post.reply.fields}


def test_the_morning_stand_up_is_in_japanese(workspace: Engine, japanese: Organisation) -> None:
    team, *personal = posts(workspace, japanese, "morning:sz-live", at(date(2026, 11, 12), 9))
    reply = team.reply
    assert reply.language == "ja"
    assert reply.headline == "深圳直播组 · 朝会レポート（11月11日(水)実績）"
    shown = fields(team)
    for label in ("昨日の売上", "昨日の目標", "注文数", "客単価", "返品率", "視聴回数"):
        assert label in shown, label
    for label in ("今月累計", "今月の進捗率", "月末着地見込み", "売上の変動要因", "メモ"):
        assert label in shown, label
    # Money as the Japanese locale writes yuan; changes of rates in points.
    assert shown["昨日の売上"].startswith("元") and "," in shown["昨日の売上"]
    assert shown["返品率"].endswith("ポイント）")
    assert "前日比" in shown["売上の変動要因"] and "主な要因：" in shown["売上の変動要因"]
    assert shown["メモ"] == "11月11日(水) 独身の日セール"
    assert reply.table is not None and reply.table.columns == ("#", "氏名")
    assert [b.label for b in reply.buttons] == [
        "変動の理由", "今月のランキング", "自分の進捗", "📊 ダッシュボード"
    ]  # fmt: skip
    assert [bar.label for bar in reply.progress] == ["昨日", "今月"]
    assert reply.context is not None and "データ更新：注文 " in reply.context
    assert reply.chart is not None and reply.chart.title == "深圳直播组 · 2026年11月 日別売上"
    assert reply.chart.alt.startswith("11日間の日別売上と日次目標")
    assert reply.chart.png.startswith(b"\x89PNG")
    said = "\n".join([reply.text, reply.context, *(f"{k} {v}" for k, v in shown.items())])
    assert not [word for word in NOT_JAPANESE if word in said]
    # Each person's own numbers in their language: the team's, unless they have their own.
    mine = {p.person: p.reply for p in personal}
    sun = mine["sun.yue"]
    assert sun.language == "ja" and sun.headline == "孙悦さん、おはようございます · 11月11日(水)"
    rank = {f.label: f.value for f in sun.fields}["順位"]
    assert rank.startswith("チーム内 ") and rank.endswith(" 位")
    assert [b.label for b in sun.buttons] == ["今日の進捗", "異議申し立て", "📊 ダッシュボード"]
    zhang = mine["zhang.wei"]
    assert zhang.language == "ja" and zhang.headline.startswith("张伟さん、おはようございます")
    li_na = mine["li.na"]
    assert li_na.language == "zh" and li_na.headline == "李娜，早上好 · 11-11"
    assert "组内第 " in li_na.text and "本月累计" in li_na.text


def test_the_day_end_recap_and_the_weekly_report_are_in_japanese(
    workspace: Engine, japanese: Organisation
) -> None:
    [evening] = posts(workspace, japanese, "evening:sz-live", at(date(2026, 11, 11), 22))
    assert evening.reply.headline == "深圳直播组 · 本日の振り返り 11月11日(水)"
    shown = fields(evening)
    for label in ("売上", "目標", "売上（先週同曜日比）", "注文数（先週同曜日比）", "前月同期比"):
        assert label in shown, label
    assert shown["目標"].startswith("元") and shown["目標"].endswith("%）")
    assert "今月累計：元" in evening.reply.text
    # Monday morning: last week, 9 to 15 November, as a Japanese reader writes a range.
    [weekly] = posts(workspace, japanese, "weekly:sz-live", at(END, 9, 30))
    reply = weekly.reply
    assert reply.headline == "深圳直播组 · 週報 11月9日～15日"
    shown = fields(weekly)
    assert "売上（前週比）" in shown and "返品率（前週比）" in shown
    assert shown["店舗トップ3"].startswith("1. ") and "元" in shown["店舗トップ3"]
    assert "店舗トップ3（CNY換算）：" in reply.text
    assert shown["メモ"] == "11月11日(水) 独身の日セール"
    assert reply.table is not None and reply.table.columns == ("#", "氏名")
    for post in (evening, weekly):
        said = "\n".join([post.reply.text, *(f"{k} {v}" for k, v in fields(post).items())])
        assert not [word for word in NOT_JAPANESE if word in said]


def test_the_digest_buttons_ask_in_japanese_what_the_chinese_ones_ask(
    workspace: Engine, japanese: Organisation
) -> None:
    now = at(date(2026, 11, 12), 9, 30)
    [team, *_] = posts(workspace, japanese, "morning:sz-live", at(date(2026, 11, 12), 9))
    dialog = Dialog(workspace, japanese, now, platform="feishu")
    chinese = ("digest.ask.why", "digest.ask.ranking", "digest.ask.mine")
    asks = [b for b in team.reply.buttons if b.action == "ask"]
    assert [b.value for b in asks] == [message("ja", m) for m in chinese]
    for button, message_id in zip(asks, chinese, strict=True):
        asked = dialog.routed("sun.yue", button.value).understood()
        meant = dialog.routed("sun.yue", message("zh", message_id)).understood()
        assert asked is not None and meant is not None
        assert asked.pop("language") == "ja" and meant.pop("language") == "zh"
        assert asked == meant and asked["intent"] != "unknown", button.value


def test_a_revised_number_is_noticed_in_japanese(workspace: Engine, japanese: Organisation) -> None:
    chat = FakeChat("feishu", private_in_place=False)
    clock = {"now": 0}
    bot = bot_for(workspace, japanese, {"feishu": chat}, lambda: clock["now"])

    def run(now: int, job: str) -> None:
        clock["now"] = now
        bot.scheduler.execute(bot.scheduler.jobs[job], now)
        bot.sender.drain()

    run(at(date(2026, 11, 12), 9), "morning:sz-live")
    # A late refund lowers the team's GMV on 11 November by well over 1 %.
    with workspace.begin() as conn:
        conn.execute(
            text(
                "UPDATE orders SET paid_time = NULL WHERE id IN (SELECT id FROM orders "
                "WHERE paid_time >= :lo AND paid_time < :hi AND shop_id = :shop "
                "ORDER BY id LIMIT 100)"
            ),
            {
                "lo": at(date(2026, 11, 11), 0),
                "hi": at(date(2026, 11, 12), 0),
                "shop": next(s.id for s in japanese.shops.values() if s.team == "sz-live"),
            },
        )
        conn.execute(text("DELETE FROM rollup_state"))  # raw edits: rebuild the rollups
    run(at(date(2026, 11, 12), 11), "restatements")
    team_channel = japanese.teams["sz-live"].channels.feishu
    notices = [r for r, t in chat.sent if r.text.startswith("📝") and t.channel == team_channel]
    [gmv] = [r for r in notices if r.text.startswith("📝 訂正：深圳直播组の11月11日の売上は 元")]
    assert gmv.language == "ja" and "に修正されました" in gmv.text
    assert any(r.text.startswith("📝 訂正：深圳直播组の11月1日～11日の売上は") for r in notices)
    assert not [r for r in notices if "更正" in r.text or "Revised" in r.text]


def test_the_chart_draws_japanese_labels_with_a_japanese_face() -> None:
    labels = [message("ja", f"chart.{key}") for key in LABELS]
    assert labels == ["日別売上", "日次目標", "今月累計", "累計目標", "日付"]
    title = message("ja", "chart.title", team="深圳直播组", month=LocalDay(END, "ja"))
    assert title == "深圳直播组 · 2026年11月 日別売上"
    # Japanese kanji in Japanese shapes: the installed Noto Sans CJK JP (fonts-noto-cjk).
    font = chart_font("ja", [title, *labels])
    assert font.name == "Noto Sans CJK JP"
    assert not font.missing("".join(labels) + "ひらがなカタカナ漢字")
    assert chart_font("zh").name == "Noto Sans CJK SC"
    points = [DayPoint(END - timedelta(days=n), None, None) for n in range(5, -1, -1)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chart = render_month_chart(title, points, "CNY", "ja")
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert chart.png.startswith(b"\x89PNG") and len(chart.png) > 10_000
    assert chart.alt == "6日間の日別売上と日次目標、今月累計と累計目標"


def test_kpibot_digest_dry_run_renders_a_japanese_digest_and_chart(
    db_url: str,
    workspace: Engine,
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KPIBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG_DIR", str(config))
    chart = tmp_path / "out.png"
    command = ["digest", "--team", "sz-live", "--at", "2026-11-12T09:00", "--dry-run"]
    result = CliRunner().invoke(app, [*command, "--chart", str(chart)])
    assert result.exit_code == 0, result.output
    output = result.output
    assert "深圳直播组 · 朝会レポート（11月11日(水)実績）" in output
    assert "今月の進捗率" in output and "月末着地見込み" in output
    assert "(深圳直播组 · 2026年11月 日別売上: 11日間の日別売上と日次目標" in output
    assert "孙悦さん、おはようございます · 11月11日(水)" in output
    assert "李娜，早上好 · 11-11" in output  # her own language
    assert chart.read_bytes().startswith(b"\x89PNG")
