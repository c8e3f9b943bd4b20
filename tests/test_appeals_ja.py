"""Appeals in Japanese: a team (or a person) reading Japanese opens an appeal in Japanese, has it
reviewed, accepted, rejected with a reason or withdrawn, is reminded past its SLA and told of a
diverged correction — every answer, card and thread message in Japanese, amounts and days as
the Japanese locale writes them, and no Chinese or English word of the other catalogues."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from bot.chat.messages import Reply, Target
from bot.features.appeals.service import ACCEPT, REJECT, START, WITHDRAW
from bot.i18n.format import money
from kpi_engine.figures import Figures
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.models import Correction
from kpi_engine.organisation import Organisation, load_organisation
from kpi_engine.periods import day_of
from kpi_engine.scopes import Scope
from tests.test_alerts import END, GROUP, LINA, NOW
from tests.test_appeals import CHEN, WANG, AppealBot
from tests.workspaces import SUN_SLACK, example_config, load_demo

DAY = date(2026, 11, 10)
SUN = SUN_SLACK
# Words of the Chinese and English appeal texts: none may reach a Japanese reader.
NOT_JAPANESE = (
    "申诉",
    "接受",
    "驳回",
    "撤回",
    "受理",
    "审核",
    "报告",
    "已更正",
    "请",
    "快照",
    "Appeal",
    "accept",
    "reject",
    "snapshot",
)


def config_with(tmp_path: Path, team_language: str) -> Path:
    """The example organisation with sz-live reading `team_language` and sun.yue (who reads
    Japanese whatever her team reads) on Slack."""
    return example_config(tmp_path, sz_live_language=team_language, sun_yue_on_slack=True)


@pytest.fixture
def japanese(tmp_path: Path) -> Organisation:
    """sz-live reads Japanese: li.na, her manager wang.fang and his manager chen.hao too."""
    organisation = load_organisation(config_with(tmp_path, "ja"))
    assert organisation.teams["sz-live"].language == "ja"
    assert organisation.language_of(organisation.people["li.na"]) == "ja"
    return organisation


@pytest.fixture
def loaded(engine: Engine, japanese: Organisation, tmp_path: Path) -> Engine:
    return load_demo(engine, japanese, tmp_path / "data", days=10, end=END, seed=21)


def gmv(engine: Engine, organisation: Organisation, scope: Scope) -> Decimal:
    figure = Figures(engine, organisation).figure(
        "gmv", scope, day_of(DAY, "Asia/Shanghai"), now=NOW
    )
    assert figure.value is not None
    return figure.value


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


def click(
    bot: AppealBot, user: str, action: str, value: str
) -> tuple[Reply, list[tuple[Reply, Target]]]:
    """The answer to whoever clicked a button, and everything the click sent."""
    before = len(bot.chat.sent)
    bot.click(user, action, value)
    sent = bot.chat.sent[before:]
    [answer] = [r for r, t in sent if t.user == user]
    return answer, sent


def japanese_only(reply: Reply) -> None:
    assert reply.language == "ja"
    leaked = [word for word in NOT_JAPANESE if word in said(reply)]
    assert not leaked, (leaked, said(reply))


def yen(value: Decimal) -> str:
    """An amount of the team's yuan as the Japanese locale writes it."""
    return money(value, "CNY", "ja")


@pytest.mark.parametrize(
    ("text", "claimed", "evidence"),
    [
        (
            "異議申し立て 昨日の売上 正しくは12000 注文番号 5791234,5791240",
            "12000",
            ["order 5791234", "order 5791240"],
        ),
        ("異議 11月10日の売上 12000であるべき", "12000", []),
        ("申し立て 11月10日の売上は12,000円のはず 2件漏れています", "12000", []),
        (
            "異議申し立て 11月10日 売上 本当は ￥12,000.50 https://seller.example/o/1",
            "12000.50",
            ["https://seller.example/o/1"],
        ),
        ("11月10日の売上が間違っている", None, []),
    ],
)
def test_a_japanese_claim_and_its_evidence_are_read_from_the_text(
    loaded: Engine, japanese: Organisation, text: str, claimed: str | None, evidence: list[str]
) -> None:
    bot = AppealBot(loaded, japanese)
    request = bot.router.parse(text, japanese.people["li.na"], "slack", NOW)
    assert request.intent == "appeal" and request.language == "ja"
    assert request.metric == "gmv"
    assert request.amount == (Decimal(claimed) if claimed else None)
    assert list(request.evidence) == evidence


def test_an_appeal_opened_in_japanese_is_reviewed_and_accepted_in_japanese(
    loaded: Engine, japanese: Organisation
) -> None:
    bot = AppealBot(loaded, japanese)
    reported = gmv(loaded, japanese, Scope("person", "li.na"))
    team_before = gmv(loaded, japanese, Scope("team", "sz-live"))
    claimed = (reported + Decimal("1234.56")).quantize(Decimal("0.01"))
    answer = bot.say(
        LINA, f"異議申し立て 11月10日の売上 正しくは{claimed} 注文番号 5791234,5791240 2件漏れ"
    )
    japanese_only(answer)
    assert answer.text == (
        f"異議申し立て #1 を受け付けました：売上 11月10日(火) 報告値 {yen(reported)}、"
        f"申立値 {yen(claimed)}。審査担当者は王芳さんで、24時間以内に対応します。"
    )
    # The card goes to the team's channel, in the team's language, the reviewer mentioned.
    [card] = [r for r, t in bot.chat.sent if t.channel == GROUP]
    japanese_only(card)
    assert card.headline == "異議申し立て #1 · 李娜 売上"
    fields = {f.label: f.value for f in card.fields}
    assert fields == {
        "申立人": "李娜",
        "対象期間": "11月10日(火)",
        "報告値": yen(reported),
        "申立値": yen(claimed),
        "差分": yen(claimed - reported),
        "審査担当者": "王芳",
        "ステータス": "未対応",
        "理由": "2件漏れ",
        "根拠": "order 5791234, order 5791240",
    }
    assert [b.label for b in card.buttons] == [
        "審査開始", "承認", "却下", "取り下げ", "📊 ダッシュボード"
    ]  # fmt: skip
    assert "「承認 1」または「却下 1 理由」と返信してください" in card.text
    assert card.context is not None and card.context.endswith(" 時点のデータ")
    assert [m.user for m in card.mentions] == [WANG]

    # The reviewer takes it into review by text, with a word both languages write alike.
    review = bot.say(WANG, "受理 1")
    japanese_only(review)
    assert review.text == "異議申し立て #1：審査中"
    # …and accepts it from the card.
    appeal = bot.appeals.store.get(1)
    assert appeal is not None and appeal.state == "in_review"
    accepted, after = click(bot, WANG, ACCEPT, f"{appeal.id}:{appeal.version}")
    assert accepted.text == "異議申し立て #1：承認済み"
    japanese_only(accepted)
    root = bot.outbox.sent_message("appeal:1:root")
    assert root is not None
    [note] = [r for r, t in after if t.thread == root.message_id]
    japanese_only(note)
    assert note.text == "異議申し立て #1：承認済み（王芳）"
    [told] = [r for r, t in after if t.user == LINA]
    japanese_only(told)
    assert told.text == (
        f"あなたの異議申し立て #1 は承認されました：11月10日(火) の数字を {yen(claimed)} に"
        "訂正しました。"
    )
    updated = [r for r, _ in after if r.headline == "異議申し立て #1 · 李娜 売上"]
    assert updated and {f.label: f.value for f in updated[-1].fields}["ステータス"] == "承認済み"
    assert not updated[-1].buttons
    # The figures are corrected by exactly the difference.
    assert gmv(loaded, japanese, Scope("person", "li.na")) == claimed
    assert gmv(loaded, japanese, Scope("team", "sz-live")) == team_before + (claimed - reported)
    # The card is out of date now: a rejection from it changes nothing.
    stale, _ = click(bot, WANG, REJECT, f"{appeal.id}:{appeal.version}")
    japanese_only(stale)
    assert (
        stale.text
        == "このカードは古くなっています：異議申し立て #1 は現在「承認済み」のため、何も変更していません。"
    )


def test_a_japanese_rejection_needs_a_reason_that_goes_to_the_appellant(
    loaded: Engine, japanese: Organisation
) -> None:
    bot = AppealBot(loaded, japanese)
    bot.say(LINA, "異議申し立て 11月10日の売上 99999であるべき")
    asked = bot.say(WANG, "却下 1")
    japanese_only(asked)
    assert asked.text == "却下の理由を書いてください：「却下 1 <理由>」"
    assert bot.appeals.store.get(1).state == "open"  # type: ignore[union-attr]
    # Someone who is not the reviewer (nor above them) is refused, as for no such appeal.
    other = japanese.people["zhang.wei"].chat.slack
    assert other
    assert bot.say(other, "承認 1").text == "対応できる異議申し立て #1 はありません。"
    assert bot.say(other, "承認 9999").text == "対応できる異議申し立て #9999 はありません。"
    before = len(bot.chat.sent)
    rejected = bot.say(WANG, "却下 1 2件は返金済みのため対象外です")
    japanese_only(rejected)
    assert rejected.text == "異議申し立て #1：却下済み"
    after = bot.chat.sent[before:]
    [told] = [r for r, t in after if t.user == LINA]
    japanese_only(told)
    assert told.text == "あなたの異議申し立て #1 は却下されました：2件は返金済みのため対象外です"
    [note] = [r for r, t in after if t.thread is not None]
    assert note.text == "異議申し立て #1：却下済み（王芳）コメント：2件は返金済みのため対象外です"
    with loaded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Correction)).scalar_one() == 0


def test_a_claim_far_beyond_the_report_is_confirmed_in_japanese(
    loaded: Engine, japanese: Organisation
) -> None:
    bot = AppealBot(loaded, japanese)
    reported = gmv(loaded, japanese, Scope("person", "li.na"))
    claimed = (reported * 100).quantize(Decimal("0.01"))
    bot.say(LINA, f"異議申し立て 11月10日の売上 正しくは{claimed}")
    asked = bot.say(WANG, "承認 1")
    japanese_only(asked)
    assert asked.text == (
        f"申立値 {yen(claimed)} は報告値 {yen(reported)} を大きく上回っています。"
        "間違いなければ「承認 1 確認」と返信してください。"
    )
    assert bot.appeals.store.get(1).state == "open"  # type: ignore[union-attr]
    assert bot.say(WANG, "承認 1 確認").text == "異議申し立て #1：承認済み"
    assert gmv(loaded, japanese, Scope("person", "li.na")) == claimed


def test_only_the_appellant_withdraws_and_the_dispute_button_explains_in_japanese(
    loaded: Engine, japanese: Organisation
) -> None:
    bot = AppealBot(loaded, japanese)
    bot.say(LINA, "異議申し立て 11月10日の売上 正しくは12000")
    appeal = bot.appeals.store.get(1)
    assert appeal is not None
    refused, _ = click(bot, WANG, WITHDRAW, f"{appeal.id}:{appeal.version}")
    assert refused.text == "対応できる異議申し立て #1 はありません。"
    withdrawn = bot.say(LINA, "取り下げ 1")
    japanese_only(withdrawn)
    assert withdrawn.text == "異議申し立て #1：取り下げ済み"
    # A second appeal, withdrawn with a word both languages write alike: still Japanese.
    bot.say(LINA, "異議申し立て 11月9日の売上 正しくは12000")
    again = bot.say(LINA, "撤回 2")
    japanese_only(again)
    assert again.text == "異議申し立て #2：取り下げ済み"
    # An appeal already open on a number is added to in its thread.
    bot.say(LINA, "異議申し立て 11月8日の売上 正しくは12000")
    twice = bot.say(LINA, "異議申し立て 11月8日の売上 正しくは13000")
    japanese_only(twice)
    assert twice.text == (
        "この数字には対応中の異議申し立て #3 があります。補足はそのスレッドに書き込んでください。"
    )
    # No number: an example of how to write one.
    missing = bot.say(LINA, "異議申し立て 11月7日の売上が間違っている")
    japanese_only(missing)
    assert missing.text == (
        "正しいと思う数字を書いてください。例：「異議申し立て 昨日の売上 正しくは12000 注文番号 5791234」"
    )
    # "異議申し立て" sits on a streamer's progress answer, and explains itself in Japanese.
    progress = bot.say(LINA, "今日の売上は？")
    assert progress.language == "ja"
    [dispute] = [b for b in progress.buttons if b.action == START]
    assert dispute.label == "異議申し立て"
    hint, _ = click(bot, LINA, START, dispute.value)
    japanese_only(hint)
    metric, _, day = dispute.value.partition("|")
    assert hint.text == (
        f"次のように返信してください：異議申し立て {day} {metric} 正しくは <正しい数字> "
        "注文番号 <注文番号>"
    )
    # …and the appeal it shows how to write is understood.
    example = f"異議申し立て {day} {metric} 正しくは 12000"
    request = bot.router.parse(example, japanese.people["li.na"], "slack", NOW)
    assert (request.intent, request.metric, request.amount) == ("appeal", "gmv", 12000)


def test_an_overdue_appeal_reminds_the_reviewer_and_their_manager_in_japanese(
    loaded: Engine, japanese: Organisation
) -> None:
    bot = AppealBot(loaded, japanese)
    bot.say(LINA, "異議申し立て 11月10日の売上 正しくは12000")
    assert bot.appeals.check(bot.clock.now + 3600) == "0 appeals reminded"
    before = len(bot.chat.sent)
    assert bot.appeals.check(bot.clock.now + 25 * 3600) == "1 appeals reminded"
    bot.sender.drain()
    reminders = {t.user: r for r, t in bot.chat.sent[before:]}
    assert set(reminders) == {WANG, CHEN}
    for reminder in reminders.values():
        japanese_only(reminder)
        assert reminder.headline == (
            "異議申し立て #1（李娜さん）が対応期限を過ぎています。至急対応してください。"
        )
        assert "ステータス: 未対応" in reminder.text
    assert bot.appeals.check(bot.clock.now + 26 * 3600) == "0 appeals reminded"


def test_the_reviewer_is_told_in_japanese_when_the_data_passes_an_accepted_claim(
    loaded: Engine, japanese: Organisation, tmp_path: Path
) -> None:
    bot = AppealBot(loaded, japanese)
    reported = gmv(loaded, japanese, Scope("person", "li.na"))
    claimed = (reported + 100).quantize(Decimal("0.01"))
    bot.say(LINA, f"異議申し立て 11月10日の売上 {claimed}のはず 1件漏れ")
    appeal = bot.appeals.store.get(1)
    assert appeal is not None and appeal.claimed_value == claimed
    bot.click(WANG, ACCEPT, f"{appeal.id}:{appeal.version}")
    late = tmp_path / "late.csv"
    row = {
        "order_id": "LATE1",
        "platform": "tiktok",
        "shop_id": "tts-gb-01",
        "status": "COMPLETED",
        "currency": "GBP",
        "create_time": "2026-11-10 05:00:00",
        "paid_time": "2026-11-10 05:00:10",
        "update_time": "2026-11-10 05:00:10",
        "sub_total": "500.00",
        "total_amount": "500.00",
        "attributed_to": "li.na",
    }
    with late.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    assert import_file(loaded, japanese, KINDS["orders"], late).ok
    raw = gmv(loaded, japanese, Scope("person", "li.na"))
    assert raw > claimed
    before = len(bot.chat.sent)
    assert bot.appeals.check(bot.clock.now) == "0 appeals reminded, 1 diverged corrections shown"
    bot.sender.drain()
    [(told, where)] = bot.chat.sent[before:]
    root = bot.outbox.sent_message("appeal:1:root")
    assert root is not None and where.thread == root.message_id
    japanese_only(told)
    assert [m.user for m in told.mentions] == [WANG]
    assert told.text == (
        f"異議申し立て #1：11月10日(火) の元データが {yen(raw)} になり、承認した {yen(claimed)} "
        "を上回りました。訂正はもう加算されず（二重に計上されることはありません）、数字は元データの"
        "とおりです。確認してください。"
    )


def test_a_japanese_reader_in_a_chinese_team_is_answered_in_japanese(
    engine: Engine, tmp_path: Path
) -> None:
    chinese = load_organisation(config_with(tmp_path, "zh"))
    assert chinese.language_of(chinese.people["sun.yue"]) == "ja"
    loaded = load_demo(engine, chinese, tmp_path / "data", days=10, end=END, seed=21)
    bot = AppealBot(loaded, chinese)
    answer = bot.say(SUN, "異議申し立て 11月10日の売上 正しくは12000")
    japanese_only(answer)
    assert answer.text.startswith("異議申し立て #1 を受け付けました：売上 11月10日(火) 報告値 ")
    assert f"申立値 {yen(Decimal(12000))}。審査担当者は王芳さんで" in answer.text
    # The team reads Chinese: its card and thread are in Chinese.
    [card] = [r for r, t in bot.chat.sent if t.channel == GROUP]
    assert card.language == "zh" and card.headline == "申诉 #1 · 孙悦 成交额"
    before = len(bot.chat.sent)
    assert bot.say(WANG, "驳回 1 数字正确").text == "申诉 #1 已驳回。"
    [told] = [r for r, t in bot.chat.sent[before:] if t.user == SUN]
    assert told.language == "ja"
    assert told.text == "あなたの異議申し立て #1 は却下されました：数字正确"
