"""The scheduler with an injected clock: firing times in each team's zone (DST, holidays,
jitter), each firing once through restarts and replicas, downtime catch-up within the grace,
the digests it posts, restatements and the freshness check."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text, update

from bot.charts import ChartFontError, missing_glyphs, render_month_chart
from bot.jobs import Job
from bot.outbox import Outbox
from bot.scheduler import STALE_RUN, FiringTrigger
from kpi_engine.clock import fixed_clock, system_clock
from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.digest import DayPoint
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.models import ImportBatch, ScheduledRun
from kpi_engine.organisation import DigestTime, Organisation
from tests.conftest import EXAMPLE_CONFIG
from tests.fakechat import FakeChat, bot_for

SHANGHAI, LA = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/Los_Angeles")
END = date(2026, 11, 12)


def at(day: date, hour: int, minute: int, tz: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).timestamp())


def digest_job(tz: str, **options: object) -> Job:
    time = DigestTime(at="09:00", jitter_minutes=0)
    return Job("morning:t", "morning", "t", tz, 7200, **{"time": time, **options})  # type: ignore[arg-type]


# -- when -------------------------------------------------------------------------------------


def test_firings_follow_the_team_clock_across_a_dst_change() -> None:
    job = digest_job("America/Los_Angeles")
    # US clocks went back on 1 November 2026: 09:00 is 17:00 UTC before and 17:00+1h after.
    firings = job.firings(at(date(2026, 10, 30), 0, 0, LA), at(date(2026, 11, 3), 0, 0, LA))
    assert firings == [at(date(2026, 10, d), 9, 0, LA) for d in (30, 31)] + [
        at(date(2026, 11, d), 9, 0, LA) for d in (1, 2)
    ]
    gaps = [b - a for a, b in itertools.pairwise(firings)]
    assert gaps == [86400, 90000, 86400]  # the day the clocks went back had 25 hours
    assert datetime.fromtimestamp(firings[2], LA).hour == 9
    shanghai = digest_job("Asia/Shanghai")
    [first] = shanghai.firings(at(END, 0, 0, SHANGHAI), at(END, 23, 0, SHANGHAI))
    assert datetime.fromtimestamp(first, ZoneInfo("UTC")).hour == 1  # 09:00 in Shanghai


def test_holidays_skip_or_shift_and_weekdays_are_kept() -> None:
    holidays = frozenset({date(2026, 10, 1), date(2026, 10, 2)})
    weekdays = DigestTime(at="09:00", days=("mon", "tue", "wed", "thu", "fri"), jitter_minutes=0)
    start, end = at(date(2026, 9, 30), 0, 0, SHANGHAI), at(date(2026, 10, 6), 0, 0, SHANGHAI)
    skip = digest_job("Asia/Shanghai", time=weekdays, holidays=holidays)
    days = [datetime.fromtimestamp(t, SHANGHAI).date() for t in skip.firings(start, end)]
    # 30 Sep is a Wednesday; 1–2 Oct are holidays; 3–4 Oct a weekend.
    assert days == [date(2026, 9, 30), date(2026, 10, 5)]
    shift = digest_job("Asia/Shanghai", time=weekdays, holidays=holidays, on_holiday="shift")
    days = [datetime.fromtimestamp(t, SHANGHAI).date() for t in shift.firings(start, end)]
    assert days == [date(2026, 9, 30), date(2026, 10, 3), date(2026, 10, 5)]


def test_jitter_is_a_few_minutes_after_the_hour_and_the_same_on_every_replica() -> None:
    job = digest_job("Asia/Shanghai", time=DigestTime(at="09:00", jitter_minutes=3))
    nominal = at(END, 9, 0, SHANGHAI)
    jitters = {job.jitter(nominal + n * 86400) for n in range(30)}
    assert all(0 <= j <= 180 for j in jitters) and len(jitters) > 10
    assert job.jitter(nominal) == digest_job(
        "Asia/Shanghai", time=DigestTime(at="09:00", jitter_minutes=3)
    ).jitter(nominal)
    assert job.next_due(nominal - 60) == nominal + job.jitter(nominal)


def test_the_configuration_gives_each_team_its_digests(
    engine: Engine, organisation: Organisation
) -> None:
    jobs = bot_for(engine, organisation, {}, fixed_clock(0)).scheduler.jobs
    assert {"morning:sz-live", "evening:la-ops", "weekly:sz-live", "freshness"} <= set(jobs)
    assert jobs["morning:la-ops"].timezone == "America/Los_Angeles"
    assert jobs["weekly:sz-live"].time is not None and jobs["weekly:sz-live"].time.days == ("mon",)


# -- once, and what is posted -----------------------------------------------------------------


@pytest.fixture
def workspace(engine: Engine, organisation: Organisation, tmp_path: Path) -> Engine:
    data = generate(organisation, EXAMPLE_CONFIG, tmp_path, days=12, end=END, seed=5)
    for label, path in data.files.items():
        assert import_file(engine, organisation, KINDS[FILE_KINDS.get(label, label)], path).ok
    return engine


class Bot:
    """A scheduler and sender on one database, sending to a fake Feishu."""

    def __init__(self, engine: Engine, organisation: Organisation, chat: FakeChat) -> None:
        self.now = 0.0
        bot = bot_for(engine, organisation, {"feishu": chat}, lambda: self.now)
        self.sender, self.notifier, self.scheduler = bot.sender, bot.notifier, bot.scheduler

    def run(self, now: int, *jobs: str) -> list[str]:
        self.now = now
        outcomes = self.scheduler.run_due(now, only=jobs or None)
        self.sender.drain()
        return [f"{o.job} {o.state}{' delayed' if o.delayed else ''}" for o in outcomes]


def morning_of(bot: Bot, day: date) -> int:
    job = bot.scheduler.jobs["morning:sz-live"]
    nominal = at(day, 9, 0, SHANGHAI)
    return nominal + job.jitter(nominal)


def test_the_morning_digest_is_posted_once_with_a_chart_and_private_lines(
    workspace: Engine, organisation: Organisation
) -> None:
    chat = FakeChat("feishu", private_in_place=False)
    bot = Bot(workspace, organisation, chat)
    due = morning_of(bot, END)
    # Not yet; the bot has just started, so the day before's firing is recorded as missed.
    assert bot.run(due - 1, "morning:sz-live") == ["morning:sz-live skipped"]
    assert chat.sent == []
    assert bot.run(due, "morning:sz-live") == ["morning:sz-live done"]
    team_channel = organisation.teams["sz-live"].channels.feishu
    [(post, _target)] = [(r, t) for r, t in chat.sent if t.channel == team_channel]
    assert post.headline == "深圳直播组 · 早报（11-11 数据）" and post.language == "zh"
    assert post.chart is not None and post.chart.png.startswith(b"\x89PNG")
    assert "本月进度" in [f.label for f in post.fields]
    assert post.table is not None and post.table.columns == ("#", "姓名")  # names, no values
    assert "暂定数据" in (post.context or "") and "订单" in (post.context or "")
    private = [(r, t) for r, t in chat.sent if t.private]
    assert private and all(t.channel == "" and t.user for _, t in private)
    li_na = organisation.people["li.na"].chat.feishu
    [(mine, _)] = [(r, t) for r, t in private if t.user == li_na]
    assert mine.headline and mine.headline.startswith("李娜，早上好")
    # The same firing again (a second tick, a restart): nothing more is sent.
    sent = len(chat.sent)
    assert bot.run(due + 30, "morning:sz-live") == ["morning:sz-live taken"]
    assert len(chat.sent) == sent


def test_a_digest_missed_while_down_is_sent_once_late_within_the_grace_else_skipped(
    workspace: Engine, organisation: Organisation
) -> None:
    chat = FakeChat("feishu", private_in_place=False)
    bot = Bot(workspace, organisation, chat)
    # Down over 11 November's morning; back at 10:30, within the two-hour grace.
    outcomes = bot.run(at(date(2026, 11, 11), 10, 30, SHANGHAI), "morning:sz-live")
    assert sorted(outcomes) == ["morning:sz-live done delayed", "morning:sz-live skipped"]
    headlines = [r.headline or "" for r, t in chat.sent if not t.private]
    assert headlines == ["深圳直播组 · 早报（11-10 数据）（延迟发送）"]
    # Down over the 12th's morning until 12:00: beyond the grace, skipped and recorded.
    sent = len(chat.sent)
    assert bot.run(at(END, 12, 0, SHANGHAI), "morning:sz-live") == ["morning:sz-live skipped"]
    assert len(chat.sent) == sent
    [skipped] = bot.scheduler.ledger("morning:sz-live", limit=1)
    assert skipped["state"] == "skipped" and "beyond the 120 min grace" in skipped["detail"]


def test_two_schedulers_on_one_database_post_once(
    workspace: Engine, organisation: Organisation
) -> None:
    chat = FakeChat("feishu", private_in_place=False)
    bots = [Bot(workspace, organisation, chat) for _ in range(2)]
    due = morning_of(bots[0], END)
    barrier = threading.Barrier(2)
    results: list[list[str]] = [[], []]

    def replica(n: int) -> None:
        barrier.wait()
        results[n] = bots[n].run(due + 5, "morning:sz-live", "evening:la-ops")

    threads = [threading.Thread(target=replica, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = sorted(results[0] + results[1])
    assert outcomes.count("morning:sz-live done") == 1
    assert outcomes.count("morning:sz-live taken") == 1
    team_channel = organisation.teams["sz-live"].channels.feishu
    assert sum(1 for _, t in chat.sent if t.channel == team_channel) == 1
    with workspace.connect() as conn:
        runs = conn.execute(text("SELECT count(*) FROM scheduled_runs WHERE state = 'done'"))
        assert runs.scalar() == sum(o.endswith("done") for o in outcomes)


def test_a_run_whose_process_died_is_taken_over_without_repeating_what_was_stored(
    workspace: Engine, organisation: Organisation
) -> None:
    chat = FakeChat("feishu", private_in_place=False)
    first = Bot(workspace, organisation, chat)
    due = morning_of(first, END)
    first.now = due
    job = first.scheduler.jobs["morning:sz-live"]
    nominal = at(END, 9, 0, SHANGHAI)
    # The first replica stored the digest but died before marking its run done.
    assert first.scheduler._claim(job, nominal, due, "running", False)
    first.scheduler.execute(job, nominal)
    stored = Outbox(workspace).counts()["pending"]
    # Restarted soon after: the run may still be in progress elsewhere, so it is left alone.
    second = Bot(workspace, organisation, chat)
    assert "morning:sz-live taken" in second.run(due + 60, "morning:sz-live")
    # Long after, still within the grace: taken over; the outbox keys stop any duplicate.
    assert "morning:sz-live done delayed" in second.run(due + STALE_RUN + 60, "morning:sz-live")
    assert Outbox(workspace).counts() == {"sent": stored}


def test_a_revised_number_gets_a_notice_in_reply_to_the_post(
    workspace: Engine, organisation: Organisation
) -> None:
    chat = FakeChat("feishu", private_in_place=False)
    bot = Bot(workspace, organisation, chat)
    bot.run(morning_of(bot, END), "morning:sz-live")
    assert bot.run(at(END, 10, 0, SHANGHAI), "restatements") == ["restatements done"]
    assert not [r for r, _ in chat.sent if r.text.startswith("📝")]
    # A late refund lowers yesterday's GMV for the team by well over 1 %.
    with workspace.begin() as conn:
        conn.execute(
            text(
                "UPDATE orders SET paid_time = NULL WHERE id IN (SELECT id FROM orders "
                "WHERE paid_time >= :lo AND paid_time < :hi AND shop_id = :shop "
                "ORDER BY id LIMIT 100)"
            ),
            {
                "lo": at(date(2026, 11, 11), 0, 0, SHANGHAI),
                "hi": at(END, 0, 0, SHANGHAI),
                "shop": next(s.id for s in organisation.shops.values() if s.team == "sz-live"),
            },
        )
        conn.execute(text("DELETE FROM rollup_state"))  # raw edits: rebuild the rollups
    assert bot.run(at(END, 11, 0, SHANGHAI), "restatements") == ["restatements done"]
    notices = [(r, t) for r, t in chat.sent if r.text.startswith("📝")]
    team_channel = organisation.teams["sz-live"].channels.feishu
    in_team = [(r, t) for r, t in notices if t.channel == team_channel]
    # Every posted number is watched: yesterday's GMV and orders, the month to date through
    # yesterday, and whatever else of the post moved with them.
    said = [r.text for r, _ in in_team]
    assert any("深圳直播组 2026-11-11 的成交额已由" in t for t in said)
    assert any("深圳直播组 2026-11-11 的成交订单已由" in t for t in said)
    assert any("深圳直播组 2026-11-01..2026-11-11 的成交额已由" in t for t in said)
    [(notice, where)] = [(r, t) for r, t in in_team if "深圳直播组 2026-11-11 的成交额" in r.text]
    assert notice.text.startswith("📝 更正：深圳直播组 2026-11-11 的成交额已由")
    original = next(
        n for n, (r, t) in enumerate(chat.sent, 1) if t.channel == team_channel and r.chart
    )
    assert where.thread == str(original)  # FakeChat's message ids count its messages
    # Checked again with nothing new: no second notice.
    count = len(chat.sent)
    bot.run(at(END, 12, 0, SHANGHAI), "restatements")
    assert len(chat.sent) == count


def test_a_silent_source_is_reported_to_admins_once(
    workspace: Engine, organisation: Organisation
) -> None:
    chat = FakeChat("feishu", private_in_place=False)
    bot = Bot(workspace, organisation, chat)
    batches = ImportBatch.__table__  # type: ignore[attr-defined]
    now = at(END, 12, 0, SHANGHAI)
    with workspace.begin() as conn:
        conn.execute(update(batches).values(imported_at=now - 3600))
        conn.execute(
            update(batches).where(batches.c.kind == "orders").values(imported_at=now - 7 * 3600)
        )
    assert bot.run(now, "freshness") == ["freshness done"]
    admin = organisation.people["chen.hao"]
    notices = [r.text for r, t in chat.sent if t.user == admin.chat.feishu]
    assert notices == [
        "⚠️ 数据源「orders」已 7 小时没有新数据（上限 6 小时），相关数字可能过时，请检查导入和同步。"
    ]
    bot.run(now + 1800, "freshness")
    assert len([t for _, t in chat.sent if t.user == admin.chat.feishu]) == 1
    with workspace.connect() as conn:
        ledger = conn.execute(
            text("SELECT detail FROM scheduled_runs WHERE job = 'freshness' ORDER BY id")
        ).scalars()
        assert list(ledger) == ["silent: orders", "silent: orders"]
    assert ScheduledRun  # the ledger table is the model's


# -- the chart --------------------------------------------------------------------------------


def test_the_chart_draws_chinese_labels_with_no_missing_glyph() -> None:
    points = [DayPoint(END - timedelta(days=n), None, None) for n in range(3, -1, -1)]
    chart = render_month_chart("深圳直播组 · 2026-11 每日 GMV", points, "CNY", "zh")
    assert chart.png.startswith(b"\x89PNG") and len(chart.png) > 10_000
    for text_ in ("深圳直播组 每日 GMV 日目标 本月累计 累计目标 日期", "LA Operations · daily GMV"):
        assert missing_glyphs(text_) == set()
    with pytest.raises(ChartFontError, match="lacks"):
        render_month_chart("𝄞 GMV", points, "CNY", "zh")


# -- APScheduler wiring -----------------------------------------------------------------------


def test_apscheduler_wakes_each_job_at_its_due_time(
    engine: Engine, organisation: Organisation
) -> None:
    chat = FakeChat("feishu", private_in_place=False)
    scheduler = bot_for(engine, organisation, {"feishu": chat}, system_clock).scheduler
    job = digest_job("Asia/Shanghai")
    now = datetime(2026, 11, 12, 8, 59, tzinfo=ZoneInfo("UTC")).astimezone(SHANGHAI)
    trigger = FiringTrigger(job, fixed_clock(now.timestamp()))
    assert trigger.get_next_fire_time(None, now) == datetime(2026, 11, 13, 9, 0, tzinfo=SHANGHAI)
    # With our clock pinned three hours behind APScheduler's, 09:00 on ours is 12:00 on its.
    behind = FiringTrigger(job, fixed_clock(now.timestamp() - 3 * 3600))
    assert behind.get_next_fire_time(None, now) == datetime(2026, 11, 13, 12, 0, tzinfo=SHANGHAI)
    # A check every second, on the real clock: APScheduler runs it, the ledger records it.
    scheduler.jobs = {"freshness": Job("freshness", "freshness", None, "UTC", 60, every=1)}
    scheduler.start()
    try:
        aps = scheduler._apscheduler
        assert aps is not None and aps.get_job("freshness").misfire_grace_time == 60
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(scheduler.ledger("freshness")) < 2:
            time.sleep(0.1)
    finally:
        scheduler.stop()
    runs = scheduler.ledger("freshness")
    assert len(runs) >= 2 and {r["state"] for r in runs} == {"done"}
    assert len({r["scheduled_for"] for r in runs}) == len(runs)
