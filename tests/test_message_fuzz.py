"""Message fuzzing: thousands of generated chat messages — the bot's own commands with hostile
text, absurd numbers and impossible dates in their slots, any Unicode (lone surrogates,
right-to-left overrides, control characters), markup from all three platforms, sizes up to
200,000 characters — from members, managers, an admin and strangers, in groups and directly,
on Slack, Feishu and DingTalk, through the real pipeline, router, features and engine (the entry
the adapters and the console use) on one workspace at a pinned time. Appeals, decisions, notes and alert actions among them
change the workspace as they go. Every message must be answered without an exception or the
generic apology, and everything the bot sends — answers, appeal cards, edits, thread notes —
must render on every platform within its limits with no member's text as live markup.

It runs on SQLite alone: it is about reading and rendering what people type, and on
PostgreSQL it took three minutes of a loaded CI machine; every store it writes to is tested on
both databases by its feature's own tests."""

from __future__ import annotations

import itertools
import json
import logging
import random
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from bot.chat.messages import InboundMessage, Reply
from bot.i18n import texts
from kpi_engine.models import AlertEvent, Annotation, Appeal
from kpi_engine.organisation import AlertCondition, AlertRuleConfig, Organisation
from tests.fakechat import Dialog, FakeChat, bot_for
from tests.platform_limits import check_everywhere, dingtalk_adapters
from tests.test_render_fuzz import INJECTIONS, UNICODE
from tests.workspaces import load_demo

pytestmark = pytest.mark.backends("sqlite")

COUNT = 5_000
SEED = 20261202
END = date(2026, 11, 12)
NOW = int(datetime(2026, 11, 12, 15, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
PLATFORMS = ("slack", "feishu", "dingtalk")
GENERIC = {texts(language)("error.generic") for language in ("zh", "en", "ja")}

QUESTIONS = (
    "今天GMV多少",
    "my GMV today",
    "本周排名",
    "team ranking this month",
    "为什么GMV下降了",
    "why did GMV drop yesterday",
    "本周GMV环比",
    "本周GMV按天",
    "GMV by shop this week",
    "我的绩效",
    "my score this month",
    "今日の売上は？",
    "帮助",
    "help",
    "告警",
    "本月备注",
    "数据更新到什么时候",
    "who is behind pace",
    "看板",
    "tiktok today",
)
TEMPLATES = (
    "加备注 {x}",
    "加备注 {x} {d}",
    "add note {x}",
    "加备注 {big}",
    "申诉 昨天GMV 应该是{n} {x}",
    "申诉 {d}GMV 应该是 {n} 订单 {n}",
    "appeal gmv {d} {n} {x}",
    "異議申し立て {d}の売上 正しくは{n}",
    "接受 {k}",
    "接受 {k} 确认",
    "accept {k} confirm",
    "驳回 {k} {x}",
    "reject {k} {big}",
    "撤回 {k}",
    "审核 {k}",
    "确认 {k}",
    "ack {k}",
    "snooze {k} {x}",
    "{d} GMV",
    "{d}的GMV",
    "{d} 同比",
    "GMV {d} vs {d}",
    "gmv from {d} to {d}",
    "{x}的GMV",
    "{x} GMV {d}",
    "{x}今天GMV{x}",
    "{x}",
    "{x} {n}",
    "top {n}",
    "前{n}名",
    "{n}",
    "{d}",
)
NUMBERS = (
    "12000",
    "0",
    "-5",
    "1e27",
    "1E+400",
    "1000000000000000000000000000",
    "99999999999999999999999",
    "999999999999999",
    "5791234579123457912345791234",
    "1_200",
    "１２０００",
    "²",
    "NaN",
    "Infinity",
    "0.000000001",
    "12,000.50",
    "¥12,000",
    "1.5e308",
    "-0",
    "0x1F",
)
DATES = (
    "9999-12-31",
    "0000-01",
    "0001-01-01",
    "1900-01-01",
    "1969-12-31",
    "2026-13",
    "2026-02-30",
    "2099-01-01",
    "0000-00-00",
    "9999-99-99",
    "2026-W99",
    "2026-11-20..2026-11-01",
    "11月31日",
    "32号",
    "Nov 31",
    "昨天",
    "上个月",
    "去年同期",
    "-2026-01",
    "20261120",
    "9999-12",
    "9999-W52",
    "0000-01-01",
    "0001-W01",
)
ALERT_IDS = ("1", "2", "7", "0", "-1", "2147483648", "99999999999999999999999", "1e27", "#3")


class Messages:
    """Seeded messages: the same run every time."""

    def __init__(self, organisation: Organisation, seed: int) -> None:
        self.random = random.Random(seed)
        self.organisation = organisation
        # Everyone who can talk on each platform, and a stranger on each.
        self.senders = {
            platform: [
                (p.id, user) for p in organisation.people.values() if (user := p.chat.get(platform))
            ]
            + [(None, f"U0STRANGER-{platform}")]
            for platform in PLATFORMS
        }
        self.channels = {
            platform: [c for t in organisation.teams.values() if (c := t.channels.get(platform))]
            for platform in PLATFORMS
        }
        self.ids = itertools.count(1)

    def hostile(self) -> str:
        r = self.random
        pieces = []
        for _ in range(r.choice((1, 1, 2, 3, 5))):
            kind = r.random()
            if kind < 0.45:
                pieces.append(r.choice(INJECTIONS))
            elif kind < 0.8:
                pieces.append(r.choice(UNICODE))
            else:
                pieces.append("".join(map(chr, r.choices(range(32, 0x2FFF), k=r.randint(1, 12)))))
        return (" " if r.random() < 0.5 else "").join(pieces)

    def big(self) -> str:
        """Up to the longest message read, or far beyond it (up to 200,000 characters)."""
        r = self.random
        size = r.choice((480, 501, 1_990, r.randint(2_001, 200_000)))
        seed = self.hostile() + "\n"
        return (seed * (size // len(seed) + 1))[:size]

    def text(self) -> str:
        r = self.random
        if r.random() < 0.15:
            return r.choice(QUESTIONS)
        template = r.choice(TEMPLATES)
        slots = {
            "x": self.hostile,
            "big": self.big,
            "n": lambda: r.choice(NUMBERS),
            "d": lambda: r.choice(DATES),
            "k": lambda: r.choice(ALERT_IDS) if r.random() < 0.3 else str(r.randint(1, 40)),
        }
        text = template
        while "{" in text and any(f"{{{slot}}}" in text for slot in slots):
            for slot, fill in slots.items():
                text = text.replace(f"{{{slot}}}", fill(), 1)
        if r.random() < 0.05:  # a whole message blown up past every limit
            text = (text + " ") * r.randint(10, 3_000)
        return text[:200_000]

    def __iter__(self) -> Iterator[InboundMessage]:
        r = self.random
        while True:
            platform = r.choice(PLATFORMS)
            person, user = r.choice(self.senders[platform])
            # Managers and the admin decide appeals: they speak more often.
            if r.random() < 0.25:
                person = r.choice(("wang.fang", "chen.hao", "emily.carter"))
                user = self.organisation.people[person].chat.get(platform) or user
            direct = r.random() < 0.6 or not self.channels[platform]
            n = next(self.ids)
            yield InboundMessage(
                platform=platform,
                workspace="T0001",
                channel=f"D-{user}" if direct else r.choice(self.channels[platform]),
                sender=user,
                text=self.text(),
                event_id=f"fuzz-{n}",
                received_at=NOW,
                is_direct=direct,
                replayable=platform == "dingtalk" and r.random() < 0.2,
            )


@pytest.fixture
def loaded(engine: Engine, organisation: Organisation, tmp_path: Path) -> Engine:
    return load_demo(engine, organisation, tmp_path, days=10, end=END, seed=21)


def test_five_thousand_generated_messages_are_answered_and_render_within_limits(
    loaded: Engine, organisation: Organisation, caplog: pytest.LogCaptureFixture
) -> None:
    chats = {p: FakeChat(p, private_in_place=p == "slack") for p in PLATFORMS}
    bot = bot_for(loaded, organisation, chats, lambda: float(NOW))
    # Everything said goes straight to the fake platforms (the notifier's mode for tests of the
    # chat core): storing and pacing it in the outbox is tested on its own, and would be most
    # of this test's time.
    bot.notifier.outbox = bot.notifier.sender = None
    adapters = dingtalk_adapters()
    seen = dict.fromkeys(PLATFORMS, 0)
    checked = 0

    def check_sent() -> int:
        """Check what was sent since the last check; how many."""
        nonlocal checked
        before = checked
        for platform, chat in chats.items():
            for sent, _ in chat.sent[seen[platform] :]:
                assert isinstance(sent, Reply)
                check_everywhere(sent, adapters, models=checked % 25 == 0)
                checked += 1
            seen[platform] = len(chat.sent)
        return checked - before

    caplog.set_level(logging.ERROR)
    # Alerts open first, so that acknowledging and snoozing them by number meets real ones.
    alerts = bot.service("alerts")
    alerts.rules = {
        scope: AlertRuleConfig(id=scope, scope=scope, condition=AlertCondition(below=10**9))
        for scope in ("person:li.na", "person:jessica.lee", "team:sz-live", "company")
    }
    assert alerts.run(NOW).startswith("4 opened")
    longest = 0
    for message in itertools.islice(Messages(organisation, SEED), COUNT):
        longest = max(longest, len(message.text))
        routed = bot.pipeline.handle(message)  # nothing may escape
        reply = routed.result.reply
        assert reply is not None, message.text[:200]
        assert reply.text not in GENERIC, message.text[:200]
        assert not caplog.records, (message.text[:200], caplog.text[-3000:])
        check_sent()
    assert longest > 100_000  # the generator reached the big sizes
    # What members wrote comes back in the digests (notes) and in the appeals' reminders.
    scheduler = bot.scheduler
    for team in organisation.teams:
        for kind in ("morning", "evening", "weekly"):
            job = scheduler.jobs.get(f"{kind}:{team}")
            if job is not None:
                scheduler.execute(job, job.firings(NOW - 8 * 86400, NOW)[-1])
    assert check_sent() > 0
    bot.service("appeals").check(NOW + 3 * 86400)
    assert check_sent() > 0 and not caplog.records, caplog.text[-3000:]
    # The state-changing commands did change the workspace on the way.
    with loaded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Appeal)).scalar_one() > 0
        assert conn.execute(select(func.count()).select_from(Annotation)).scalar_one() > 0
        acted = select(func.count()).select_from(AlertEvent).where(AlertEvent.actor != "kpibot")
        assert conn.execute(acted).scalar_one() > 0
    assert checked >= COUNT


def test_the_documented_limits_hold(loaded: Engine, organisation: Organisation) -> None:
    t = texts("zh")
    dialog = Dialog(loaded, organisation, NOW)
    assert dialog.answer("li.na", "加备注 " + "长" * 501).text == t("notes.too_long", max=500)
    assert dialog.answer("li.na", "x" * 2_001).text == t("message.too_long", max=2000)
    kept = "备" * 500
    assert kept in dialog.answer("li.na", "加备注 " + kept).text
    orders = ",".join(str(5_791_234 + n) for n in range(30))
    claim = f"申诉 11月10日GMV 应该是1500 订单 {orders} " + "漏" * 1_000
    assert "#1" in dialog.answer("li.na", claim).text
    with loaded.connect() as conn:
        notes = conn.execute(select(Annotation.text)).scalars().all()  # type: ignore[call-overload]
        reason, evidence = conn.execute(select(Appeal.reason, Appeal.evidence)).one()  # type: ignore[call-overload]
    assert notes == [kept]
    assert len(reason) == 500 and len(json.loads(evidence)) == 20
