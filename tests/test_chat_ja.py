"""Chat in Japanese: questions asked in Japanese are understood as the same questions asked in
Chinese or English, and answered in Japanese — labels, buttons, caveats, numbers and days as
the Japanese locale writes them, with no Chinese or English word left in."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from bot.chat.messages import Reply
from bot.i18n.format import money
from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.figures import Figures
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import Organisation
from kpi_engine.periods import day_of
from kpi_engine.scopes import Scope
from tests.conftest import EXAMPLE_CONFIG
from tests.fakechat import Dialog

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = int(datetime(2026, 11, 12, 15, tzinfo=SHANGHAI).timestamp())
END = date(2026, 11, 12)
# Words of the Chinese and English replies that a Japanese reader must never get.
NOT_JAPANESE = (
    "今天", "昨天", "本周", "本月", "目标", "完成率", "进度", "排名", "实际", "成交额", "变化",
    "原因", "暂定", "数据截至", "你", "Target", "Pace", "Actual", "Rank", "provisional",
    "data as of", "Change", "Driver",
)  # fmt: skip


@pytest.fixture
def dialog(engine: Engine, organisation: Organisation, tmp_path: Path) -> Dialog:
    data = generate(organisation, EXAMPLE_CONFIG, tmp_path, days=10, end=END, seed=21)
    for label, path in data.files.items():
        assert import_file(engine, organisation, KINDS[FILE_KINDS.get(label, label)], path).ok
    return Dialog(engine, organisation, NOW, platform="feishu")


def shown(reply: Reply) -> str:
    """Everything the reader sees of a reply."""
    parts = [reply.text, reply.headline or "", reply.context or ""]
    parts += [f"{f.label} {f.value}" for f in reply.fields]
    parts += [b.label for b in reply.buttons]
    if reply.table is not None:
        parts += [*reply.table.columns, *(" ".join(row) for row in reply.table.rows)]
    return "\n".join(parts)


def japanese(reply: Reply) -> dict[str, str]:
    """The reply's fields, after checking it is wholly Japanese."""
    assert reply.language == "ja"
    said = shown(reply)
    assert [word for word in NOT_JAPANESE if word in said] == [], said
    return {f.label: f.value for f in reply.fields}


def test_progress_asked_in_japanese(
    dialog: Dialog, engine: Engine, organisation: Organisation
) -> None:
    # li.na reads Chinese, but a question in Japanese is answered in Japanese.
    reply = dialog.answer("li.na", "今日の売上は？")
    fields = japanese(reply)
    assert reply.headline == "李娜 · 今日（2026-11-12） · 売上"
    figure = Figures(engine, organisation).figure(
        "gmv", Scope("person", "li.na"), day_of(END, "Asia/Shanghai"), now=NOW
    )
    assert fields["実績"] == money(figure.value, "CNY", "ja")
    assert fields["目標"].startswith("元") and fields["達成率"].endswith("%")
    assert fields["順位"].startswith("チーム内 ") and fields["順位"].endswith("位")
    assert [b.label for b in reply.buttons][:2] == ["チームランキング", "変動の理由"]
    # Yesterday's average order value, and a day written the Japanese way.
    assert "客単価" in (dialog.answer("li.na", "昨日の客単価").headline or "")
    assert "2026-11-10" in (dialog.answer("li.na", "11月10日の売上").headline or "")


def test_ranking_why_compare_and_breakdown_in_japanese(dialog: Dialog) -> None:
    ranking = dialog.answer("sun.yue", "今週のランキング")
    japanese(ranking)
    assert ranking.table is not None and ranking.table.columns == ("順位", "氏名", "売上")
    assert any(row[1] == "孙悦（あなた）" for row in ranking.table.rows)
    why = dialog.answer("sun.yue", "なぜ売上が下がった")
    japanese(why)
    assert why.table is not None and why.table.columns == ("要因", "前期", "当期", "寄与額")
    assert "との比較" in (why.headline or "")
    compare = dialog.answer("sun.yue", "今週の売上 前週比")
    assert "増減" in japanese(compare)
    breakdown = dialog.answer("sun.yue", "今週の売上 日別")
    japanese(breakdown)
    assert breakdown.table is not None and breakdown.table.columns == ("日付", "売上")
    assert [row[0] for row in breakdown.table.rows] == [
        "2026-11-09",
        "2026-11-10",
        "2026-11-11",
        "2026-11-12",
    ]


def test_score_help_notes_and_unknown_text_in_japanese(dialog: Dialog) -> None:
    score = dialog.answer("li.na", "今月の自分のスコア")
    japanese(score)
    assert "スコアカード" in (score.headline or "")
    help_text = dialog.answer("sun.yue", "ヘルプ")
    japanese(help_text)
    assert help_text.text.startswith("例えばこう聞いてください：")
    note = dialog.answer("wang.fang", "メモを追加 アルゴリズム変更 昨日")
    japanese(note)
    notes = dialog.answer("sun.yue", "メモ")
    japanese(notes)
    assert "アルゴリズム変更" in shown(notes)
    unknown = dialog.answer("sun.yue", "ぬるぽ")
    japanese(unknown)
