"""Alerts in Japanese: a reader of Japanese (their team's language, or their own) gets alert cards
naming the person, the number, the target and the reason in Japanese, with Japanese buttons;
acts on them from the card or by Japanese text ("確認 1", "スヌーズ 1 2時間", "誤報 1",
"解決 1"); and is told of escalations, reminders and the end of quiet hours in Japanese —
amounts, percentages and times as the Japanese locale writes them, and no word of the Chinese
or English cards."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.chat.messages import Reply
from bot.features.alerts.service import ACK, FALSE_ALARM, SNOOZE, SNOOZE_TOMORROW
from bot.i18n.format import money, percent
from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.figures import Figures
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import AlertCondition, Organisation, load_organisation
from kpi_engine.periods import day_of
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans
from tests.conftest import EXAMPLE_CONFIG
from tests.test_alerts import END, GROUP, LINA, NOW, SHANGHAI, Bot, lina_today, rule, with_rules
from tests.workspaces import SUN_SLACK, example_config, load_demo

WANG = "U07WANGFANG"
CHEN = "U07CHENHAO"
ZHANG = "U07ZHANGWEI"
SUN = SUN_SLACK
ELEVENTH = date(2026, 11, 11)  # at 15:00 that day li.na is behind the plan's pace
# Words of the Chinese and English alert texts: none may reach a Japanese reader.
NOT_JAPANESE = (
    "告警",
    "确认",
    "暂停",
    "不是问题",
    "查看明细",
    "申诉",
    "对象",
    "指标",
    "当前",
    "状态",
    "处理",
    "提醒",
    "级别",
    "已结算",
    "暂定",
    "低于",
    "高于",
    "进度",
    "小时",
    "回复",
    "公司",
    "没有",
    "Alert",
    "Ack",
    "Snooze",
    "acknowledged",
    "snoozed",
    "firing",
    "level",
    "below",
    "settled",
    "provisional",
)


def config_with(tmp_path: Path, team_language: str) -> Path:
    """The example organisation with sz-live reading `team_language` and sun.yue (who reads
    Japanese whatever her team reads) on Slack."""
    return example_config(tmp_path, sz_live_language=team_language, sun_yue_on_slack=True)


@pytest.fixture
def japanese(tmp_path: Path) -> Organisation:
    """sz-live reads Japanese: li.na, zhang.wei, their manager wang.fang and his manager
    chen.hao too."""
    organisation = load_organisation(config_with(tmp_path, "ja"))
    for person in ("li.na", "zhang.wei", "wang.fang", "chen.hao"):
        assert organisation.language_of(organisation.people[person]) == "ja"
    return organisation


@pytest.fixture
def loaded(engine: Engine, japanese: Organisation, tmp_path: Path) -> Engine:
    return load_demo(engine, japanese, tmp_path / "data", days=10, end=END, seed=21)


def at(day: date, hour: int, minute: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI).timestamp())


def said(reply: Reply) -> str:
    """Everything a reader sees of a reply."""
    return "\n".join(
        [
            reply.text,
            reply.headline or "",
            reply.context or "",
            *(f"{f.label} {f.value}" for f in reply.fields),
            *(b.label for b in reply.buttons),
        ]
    )


def japanese_only(reply: Reply) -> None:
    assert reply.language == "ja"
    leaked = [word for word in NOT_JAPANESE if word in said(reply)]
    assert not leaked, (leaked, said(reply))


def fields(reply: Reply) -> dict[str, str]:
    return {f.label: f.value for f in reply.fields}


def yuan(value: Decimal) -> str:
    """An amount of the team's yuan as the Japanese locale writes it."""
    return money(value, "CNY", "ja")


def lina_bot(engine: Engine, organisation: Organisation) -> Bot:
    """The chat side with one rule: li.na's GMV today under a floor just above it."""
    actual = lina_today(engine, organisation)
    return Bot(engine, with_rules(organisation, rule(condition=AlertCondition(below=actual + 1))))


def test_the_card_names_the_person_the_number_the_target_and_the_reason_in_japanese(
    loaded: Engine, japanese: Organisation
) -> None:
    # The plan's pace, as the plan reckons it independently of the alert rules.
    figures = Figures(loaded, japanese)
    plans = Plans(japanese.plans, japanese.targets, japanese.catalogue)
    now = at(ELEVENTH, 15)
    day = day_of(ELEVENTH, "Asia/Shanghai")
    progress = plans.progress(figures.figure("gmv", Scope("person", "li.na"), day, now=now), now)
    assert progress.pace is not None and progress.pace < Decimal("0.7")
    assert progress.expected is not None and progress.target is not None
    pace = rule(plan="2026-h2", condition=AlertCondition(below_pace_percent=Decimal(30)))
    bot = Bot(loaded, with_rules(japanese, pace))
    bot.clock.now = now
    bot.run()
    [alert] = bot.alerts.store.open_alerts()
    [card] = [r for r, t in bot.posts() if t.user == LINA]
    japanese_only(card)
    assert card.headline == f"⚠️ アラート #{alert.id} · 李娜 売上"
    assert alert.value is not None
    assert fields(card) == {
        "対象": "李娜",
        "指標": "売上",
        "現在値": yuan(alert.value),
        "目標": yuan(progress.target),
        "理由": f"進捗ペース {percent(progress.pace, 'ja')}、基準の 70% を下回っています"
        f"（計画では現時点で {yuan(progress.expected)} の見込み）",
        "状態": "発生中",
    }
    assert [b.label for b in card.buttons] == [
        "確認",
        "1時間スヌーズ",
        "明日までスヌーズ",
        "問題なし",
        "内訳を見る",
        "異議申し立て",
        "📊 ダッシュボード",
    ]
    assert f"「確認 {alert.id}」または「スヌーズ {alert.id} 2時間」と返信" in card.text
    settled = "速報値" if alert.provisional else "確定値"
    assert card.context == f"2026-11-11 · {settled} · エスカレーションレベル 0"
    # The team channel, in the team's Japanese: who and what, not her number.
    [group_card] = [r for r, t in bot.posts() if t.channel == GROUP]
    japanese_only(group_card)
    assert "李娜" in group_card.text and yuan(alert.value) not in said(group_card)
    assert "現在値" not in fields(group_card) and "理由" not in fields(group_card)
    # The breakdown button asks its question in Japanese, and is answered in Japanese.
    [breakdown] = [b for b in card.buttons if b.label == "内訳を見る"]
    answer = bot.click(LINA, breakdown.action, breakdown.value)
    assert answer is not None and answer.language == "ja"
    assert "売上" in answer.text and "2026-11-11" in answer.text


def test_ack_from_the_card_updates_every_card_in_japanese(
    loaded: Engine, japanese: Organisation
) -> None:
    bot = lina_bot(loaded, japanese)
    bot.run()  # 15:00 in Shanghai
    [alert] = bot.alerts.store.open_alerts()
    [card] = [r for r, t in bot.posts() if t.user == LINA]
    [ack] = [b for b in card.buttons if b.action == ACK]
    assert ack.label == "確認"
    before = len(bot.chat.sent)
    answer = bot.click(LINA, ACK, ack.value)
    assert answer is not None
    japanese_only(answer)
    assert (
        answer.text == f"アラート #{alert.id} を確認しました。李娜さんが確認済み（11月12日 15:00）"
    )
    acked = bot.alerts.store.get(alert.id)
    assert acked is not None and acked.state == "acknowledged" and acked.acked_by == "li.na"
    # Her card and the channel's both say so, in Japanese.
    updates = [r for r, t in bot.chat.sent[before:] if not t.private]
    assert len(updates) == 2
    for update in updates:
        japanese_only(update)
        assert fields(update)["状態"] == "確認済み"
        assert fields(update)["対応"] == "李娜さんが確認済み（11月12日 15:00）"
    # The same card clicked again (a snooze): out of date, nothing changes.
    stale = bot.click(LINA, SNOOZE, f"{ack.value}:1h")
    assert stale is not None
    japanese_only(stale)
    assert stale.text == (
        f"このカードは古くなっています：アラート #{alert.id} は現在「確認済み」のため、"
        "変更していません。"
    )
    assert bot.alerts.store.get(alert.id).state == "acknowledged"  # type: ignore[union-attr]


def test_only_the_owner_their_managers_and_admins_may_act_by_japanese_text(
    loaded: Engine, japanese: Organisation
) -> None:
    bot = lina_bot(loaded, japanese)
    bot.run()  # 15:00 in Shanghai
    [alert] = bot.alerts.store.open_alerts()
    refused = bot.click(ZHANG, ACK, f"{alert.id}:{alert.version}")
    assert refused is not None
    japanese_only(refused)
    assert refused.text == f"あなたが対応できるアラート #{alert.id} はありません。"
    # The same words for an alert that does not exist, and for a Japanese text command.
    assert bot.say(ZHANG, "確認 9999").text == "あなたが対応できるアラート #9999 はありません。"
    assert bot.say(ZHANG, f"誤報 {alert.id}").text == refused.text
    assert bot.alerts.store.get(alert.id).state == "firing"  # type: ignore[union-attr]
    # Her manager acknowledges with a note, then resolves it, in Japanese.
    reply = bot.say(WANG, f"確認 {alert.id} 対応中")
    japanese_only(reply)
    assert (
        reply.text == f"アラート #{alert.id} を確認しました。王芳さんが確認済み（11月12日 15:00）"
    )
    acked = bot.alerts.store.get(alert.id)
    assert acked is not None and acked.acked_by == "wang.fang" and acked.note == "対応中"
    bot.clock.now += 10 * 60
    resolved = bot.say(WANG, f"解決 {alert.id}")
    japanese_only(resolved)
    assert (
        resolved.text
        == f"アラート #{alert.id} を解決済みにしました。解消済み（王芳）11月12日 15:10"
    )
    assert bot.alerts.store.get(alert.id).state == "resolved"  # type: ignore[union-attr]


def test_japanese_snoozes_wake_and_not_a_problem(loaded: Engine, japanese: Organisation) -> None:
    bot = lina_bot(loaded, japanese)
    bot.run()  # 15:00 in Shanghai
    [alert] = bot.alerts.store.open_alerts()
    snoozed = bot.say(LINA, f"スヌーズ {alert.id} 2時間")
    japanese_only(snoozed)
    assert snoozed.text == f"アラート #{alert.id} をスヌーズしました。11月12日 17:00 までスヌーズ中"
    found = bot.alerts.store.get(alert.id)
    assert found is not None and found.snoozed_until == bot.clock.now + 7200
    unclear = bot.say(LINA, f"スヌーズ {alert.id} しばらく")
    japanese_only(unclear)
    assert unclear.text.startswith("どのくらいスヌーズしますか？")
    # Her open alerts, in Japanese.
    listing = bot.say(LINA, "アラート")
    japanese_only(listing)
    assert listing.headline == "未対応のアラート（1件）"
    assert f"#{alert.id} 李娜 売上 · スヌーズ中 · " in listing.text
    bot.run(121)  # the snooze ran out: firing again, her card says so
    woken = bot.alerts.store.get(alert.id)
    assert woken is not None and woken.state == "firing"
    # The card's "until tomorrow" button: 08:00 on the team's clock tomorrow.
    *_, card = [r for r, _ in bot.chat.sent if r.buttons]
    japanese_only(card)
    assert fields(card)["状態"] == "発生中"
    [tomorrow] = [b for b in card.buttons if b.action == SNOOZE_TOMORROW]
    answer = bot.click(LINA, SNOOZE_TOMORROW, tomorrow.value)
    assert answer is not None
    japanese_only(answer)
    assert answer.text.endswith("11月13日 08:00 までスヌーズ中")
    # Not a problem, said in Japanese: counted as a false alarm.
    done = bot.say(LINA, f"誤報 {alert.id}")
    japanese_only(done)
    assert done.text == (
        f"アラート #{alert.id} を「問題なし」にしました。李娜さんが「問題なし」と判断（11月12日 17:01）"
    )
    assert bot.alerts.store.false_alarm_rates() == {"lina-gmv": (1, 1)}
    none = bot.say(LINA, "アラート")
    japanese_only(none)
    assert none.text == "未対応のアラートはありません。"


def test_not_a_problem_from_the_card_in_japanese(loaded: Engine, japanese: Organisation) -> None:
    bot = lina_bot(loaded, japanese)
    bot.run()  # 15:00 in Shanghai
    [alert] = bot.alerts.store.open_alerts()
    [card] = [r for r, t in bot.posts() if t.user == LINA]
    [button] = [b for b in card.buttons if b.action == FALSE_ALARM]
    assert button.label == "問題なし"
    answer = bot.click(LINA, FALSE_ALARM, button.value)
    assert answer is not None
    japanese_only(answer)
    assert answer.text.startswith(f"アラート #{alert.id} を「問題なし」にしました。")
    *_, channel = [r for r, t in bot.chat.sent if t.channel == GROUP]
    japanese_only(channel)
    assert fields(channel)["状態"] == "解消済み" and not channel.buttons


def test_quiet_hours_escalation_and_reminders_are_told_in_japanese(
    loaded: Engine, japanese: Organisation
) -> None:
    actual = lina_today(loaded, japanese)
    quiet = rule(
        condition=AlertCondition(below=actual + 1),
        notify=("owner",),
        quiet_hours=("14:00", "16:00"),
    )
    bot = Bot(loaded, with_rules(japanese, quiet))
    bot.run()  # 15:00 in Shanghai: opened, not told
    [alert] = bot.alerts.store.open_alerts()
    assert bot.posts() == []
    bot.run(61)  # 16:01: the quiet hours are over
    [(card, target)] = bot.posts()
    assert target.user == LINA
    japanese_only(card)
    assert card.context is not None and card.context.endswith("エスカレーションレベル 0")
    # Unacknowledged for half an hour: her manager gets the card, hers shows the new level.
    before = len(bot.chat.sent)
    assert "1 escalated" in bot.run(31)
    sent = bot.chat.sent[before:]
    [(manager_card, _)] = [(r, t) for r, t in sent if t.user == WANG]
    japanese_only(manager_card)
    assert manager_card.context is not None
    assert manager_card.context.endswith("エスカレーションレベル 1")
    assert manager_card.headline == f"⚠️ アラート #{alert.id} · 李娜 売上"
    # And on to the admin an hour after li.na was told (quiet hours do not count): the cards
    # now count the reminders, in Japanese.
    before = len(bot.chat.sent)
    assert "0 escalated" in bot.run(5)
    assert "1 escalated" in bot.run(25)
    [(admin_card, _)] = [(r, t) for r, t in bot.chat.sent[before:] if t.user == CHEN]
    japanese_only(admin_card)
    assert admin_card.context is not None and admin_card.context.endswith("レベル 2")
    assert fields(admin_card)["リマインド回数"] == "1"
    for update, _ in bot.chat.sent[before:]:
        japanese_only(update)
    # The manager acknowledges in Japanese; nothing escalates further.
    japanese_only(bot.say(WANG, f"確認 {alert.id}"))
    bot.run(120)
    assert bot.alerts.store.get(alert.id).level == 2  # type: ignore[union-attr]


def test_a_japanese_reader_in_a_chinese_team_gets_her_cards_in_japanese(
    engine: Engine, tmp_path: Path
) -> None:
    chinese = load_organisation(config_with(tmp_path, "zh"))
    assert chinese.language_of(chinese.people["sun.yue"]) == "ja"
    loaded = load_demo(engine, chinese, tmp_path / "data", days=10, end=END, seed=21)
    # sun.yue operates the Amazon JP shop, whose amounts are in yen.
    bot = Bot(loaded, with_rules(chinese, rule(id="jp-gmv", scope="shop:amz-jp-01")))
    bot.run()
    [alert] = bot.alerts.store.open_alerts()
    [mine] = [r for r, t in bot.posts() if t.user == SUN]
    japanese_only(mine)
    assert alert.value is not None
    assert fields(mine)["現在値"] == money(alert.value, "JPY", "ja")
    assert fields(mine)["理由"] == "￥1,000,000,000 を下回っています"
    # The team's channel still reads Chinese.
    [channel] = [r for r, t in bot.posts() if t.channel == GROUP]
    assert channel.language == "zh" and channel.headline.startswith("⚠️ 告警 #")  # type: ignore[union-attr]
    # Her Japanese answer; the channel's card updated in Chinese, hers in Japanese.
    before = len(bot.chat.sent)
    reply = bot.say(SUN, f"確認 {alert.id}")
    japanese_only(reply)
    # The shop's clock (Tokyo) is an hour ahead of Shanghai.
    assert (
        reply.text == f"アラート #{alert.id} を確認しました。孙悦さんが確認済み（11月12日 16:00）"
    )
    updates = [r for r, t in bot.chat.sent[before:] if not t.private and r is not reply]
    assert sorted(r.language for r in updates) == ["ja", "zh"]
    [zh] = [r for r in updates if r.language == "zh"]
    assert {f.label: f.value for f in zh.fields}["处理"] == "已确认 by 孙悦 11-12 16:00"


def test_a_silent_source_is_told_to_the_admin_in_japanese(
    engine: Engine, japanese: Organisation, tmp_path: Path
) -> None:
    # The data was last imported eight hours ago, up to that moment; the example rule allows six.
    then = NOW - 8 * 3600
    data = generate(japanese, EXAMPLE_CONFIG, tmp_path / "data", days=3, now=then, seed=21)
    for label, path in data.files.items():
        kind = KINDS[FILE_KINDS.get(label, label)]
        assert import_file(engine, japanese, kind, path, now=then).ok
    [silent] = [r for r in japanese.alerts if r.id == "orders-data-silent"]
    bot = Bot(engine, with_rules(japanese, silent))
    bot.run()
    [(card, target)] = bot.posts()
    assert target.user == CHEN
    japanese_only(card)
    assert fields(card)["対象"] == "全社"
    assert fields(card)["理由"] == "注文の新しいデータが 8 時間ありません（上限 6 時間）"
