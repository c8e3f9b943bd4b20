"""Scheduled jobs: each team's morning stand-up, day-end recap and weekly report in the team's
own time zone, the data-freshness check and the restatement check.

Firing times come from the configuration (`schedules`, `holidays`): a digest time on the
team's weekdays, skipped (or shifted to the next day that is no holiday) on holidays, a few
minutes after the nominal time by a jitter that every replica computes alike. APScheduler 3
wakes each job at its next firing through `FiringTrigger`; what makes a firing happen once is
the run ledger: a `scheduled_runs` row with the unique (job, scheduled_for) is inserted
before the job runs, so of several replicas — or a replica restarted mid-run — exactly one
runs it. Messages are keyed by job and firing in the outbox, so a run repeated after a crash
adds nothing that was already stored.

A firing missed while the bot was down is run when it starts again, marked "(delayed)", if it
is still within `misfire_grace_minutes`; beyond that it is recorded as skipped and logged.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.alerts import AlertService
from bot.appeals import AppealService
from bot.chat.messages import Reply, Target
from bot.chat.notifier import Notifier
from bot.digests import Digests, Post
from bot.restatements import check_restatements, record_posted
from kpi_engine.digest import last_week, recap, team_digest
from kpi_engine.figures import Figures
from kpi_engine.freshness import silent_sources
from kpi_engine.instants import zone
from kpi_engine.models import ScheduledRun
from kpi_engine.organisation import WEEKDAYS, DigestTime, Organisation, PersonConfig
from kpi_engine.periods import day_of, today
from kpi_engine.targets import Plans

log = logging.getLogger(__name__)
_RUNS = ScheduledRun.__table__  # type: ignore[attr-defined]

# Checks that are not digests run at fixed intervals, organisation-wide.
FRESHNESS_EVERY = 30 * 60
RESTATEMENTS_EVERY = 60 * 60
ALERTS_EVERY = 5 * 60  # alert rules are evaluated (and escalations checked) this often
APPEALS_EVERY = 15 * 60  # appeals past their SLA are looked for this often
# A run still "running" this long after it started died with its process: run it again.
STALE_RUN = 15 * 60
# Later than this after its due time, a digest says it is delayed.
DELAYED_AFTER = 5 * 60


@dataclass(frozen=True)
class Job:
    """A scheduled job and when it fires."""

    id: str  # "morning:sz-live", "freshness"
    kind: str  # morning, evening, weekly, freshness, restatements
    team: str | None
    timezone: str
    grace: int  # seconds
    time: DigestTime | None = None  # a digest's time of day and weekdays
    holidays: frozenset[date] = frozenset()
    on_holiday: str = "skip"
    every: int | None = None  # seconds, for a check

    def jitter(self, nominal: int) -> int:
        """The firing's delay after its nominal time: pseudo-random, the same on every replica."""
        if self.time is None or not self.time.jitter_minutes:
            return 0
        digest = hashlib.sha256(f"{self.id}@{nominal}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % (self.time.jitter_minutes * 60 + 1)

    def firings(self, start: int, end: int) -> list[int]:
        """Nominal firing instants in [start, end), in order."""
        if self.every is not None:
            first = -(-start // self.every) * self.every
            return list(range(first, end, self.every))
        assert self.time is not None
        tz = zone(self.timezone)
        hour, minute = (int(part) for part in self.time.at.split(":"))
        days = {WEEKDAYS.index(d) for d in self.time.days}
        found: set[int] = set()
        # A week before `start`: a firing shifted past holidays may land in the window.
        day = datetime.fromtimestamp(start, tz).date() - timedelta(days=7)
        last = datetime.fromtimestamp(end, tz).date()
        while day <= last:
            if day.weekday() in days:
                when: date | None = day
                if day in self.holidays:
                    when = None
                    if self.on_holiday == "shift":
                        when = day + timedelta(days=1)
                        while when in self.holidays:
                            when += timedelta(days=1)
                if when is not None:
                    # A time the clock skips at a DST change is read with the offset before it.
                    local = datetime(when.year, when.month, when.day, hour, minute, tzinfo=tz)
                    instant = int(local.timestamp())
                    if start <= instant < end:
                        found.add(instant)
            day += timedelta(days=1)
        return sorted(found)

    def next_due(self, after: int) -> int | None:
        """The first due time (nominal + jitter) later than `after`."""
        if self.every is not None:
            return (after // self.every + 1) * self.every
        horizon = 40 * 86400
        for nominal in self.firings(after - 3600, after + horizon):
            if nominal + self.jitter(nominal) > after:
                return nominal + self.jitter(nominal)
        return None


def jobs_of(organisation: Organisation) -> list[Job]:
    """Every job the configuration asks for."""
    settings = organisation.settings
    found = []
    for team in organisation.teams.values():
        schedules = team.schedules or settings.schedules
        holidays = frozenset(settings.holidays) | frozenset(team.holidays)
        for kind in ("morning", "evening", "weekly"):
            at: DigestTime | None = getattr(schedules, kind)
            if at is None:
                continue
            found.append(
                Job(
                    id=f"{kind}:{team.id}",
                    kind=kind,
                    team=team.id,
                    timezone=team.timezone,
                    grace=schedules.misfire_grace_minutes * 60,
                    time=at,
                    holidays=holidays,
                    on_holiday=schedules.on_holiday,
                )
            )
    grace = settings.schedules.misfire_grace_minutes * 60
    found.append(Job("freshness", "freshness", None, "UTC", grace, every=FRESHNESS_EVERY))
    found.append(Job("restatements", "restatements", None, "UTC", grace, every=RESTATEMENTS_EVERY))
    found.append(Job("appeals", "appeals", None, "UTC", APPEALS_EVERY, every=APPEALS_EVERY))
    if organisation.alerts:
        # A missed round is not worth catching up: the next one looks at the same figures.
        found.append(Job("alerts", "alerts", None, "UTC", ALERTS_EVERY, every=ALERTS_EVERY))
    return found


@dataclass(frozen=True)
class Outcome:
    """What happened to one firing."""

    job: str
    scheduled_for: int
    state: str  # done, failed, skipped, or taken (another replica has it)
    delayed: bool = False
    detail: str = ""


class FiringTrigger(BaseTrigger):  # type: ignore[misc]
    """APScheduler trigger over a `Job`'s calendar (holidays, shifts, jitter included)."""

    __slots__ = ("job",)

    def __init__(self, job: Job) -> None:
        self.job = job

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> Any:
        after = previous_fire_time or now - timedelta(seconds=1)
        due = self.job.next_due(int(after.timestamp()))
        return None if due is None else datetime.fromtimestamp(due, now.tzinfo)


class Scheduler:
    """Runs the jobs' firings once each, by the run ledger, through the notifier."""

    def __init__(
        self,
        organisation: Organisation,
        engine: Engine,
        notifier: Notifier,
        platforms: Iterable[str],
        *,
        figures: Figures | None = None,
        alerts: AlertService | None = None,
        appeals: AppealService | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.organisation = organisation
        self.engine = engine
        self.notifier = notifier
        self.platforms = [p for p in platforms if p != "console"]
        self.figures = figures or Figures(engine, organisation)
        self.plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
        self.digests = Digests(organisation, engine, self.figures, self.plans)
        self.alerts = alerts or AlertService(
            organisation, engine, self.figures, self.plans, notifier, self.platforms
        )
        self.appeals = appeals or AppealService(organisation, engine, self.figures, notifier)
        self.clock = clock
        self.jobs = {job.id: job for job in jobs_of(organisation)}
        self._apscheduler: BackgroundScheduler | None = None

    # -- when -------------------------------------------------------------------------------

    def next_firings(self, now: int, count: int = 3) -> dict[str, list[int]]:
        """Each job's next due times."""
        found = {}
        for job in self.jobs.values():
            times: list[int] = []
            after = now
            while len(times) < count and (due := job.next_due(after)) is not None:
                times.append(due)
                after = due
            found[job.id] = times
        return found

    def run_due(
        self, now: int | None = None, *, only: Iterable[str] | None = None
    ) -> list[Outcome]:
        """Run every firing now due that has not run; skip (and record) those too late."""
        now = int(self.clock()) if now is None else now
        outcomes: list[Outcome | None] = []
        for job in self.jobs.values():
            if only is not None and job.id not in only:
                continue
            lookback = job.grace + 86400 + (job.time.jitter_minutes * 60 if job.time else 0)
            due = [n for n in job.firings(now - lookback, now + 1) if n + job.jitter(n) <= now]
            fresh = [n for n in due if now - (n + job.jitter(n)) <= job.grace]
            late = [n for n in due if n not in fresh]
            if fresh:
                # Only the latest firing still in time runs; earlier ones are superseded by it.
                nominal = fresh[-1]
                delayed = now - (nominal + job.jitter(nominal)) > DELAYED_AFTER
                outcomes.append(self._run(job, nominal, now, delayed))
            if job.every is not None:
                continue  # a check's missed runs are made good by its next one: nothing to log
            for nominal in late:
                detail = (
                    f"missed by {(now - nominal) // 60} min, beyond the {job.grace // 60} min grace"
                )
                outcomes.append(self._skip(job, nominal, now, detail))
            for nominal in fresh[:-1]:
                outcomes.append(
                    self._skip(job, nominal, now, f"superseded by {_stamp(fresh[-1], job)}")
                )
        return [o for o in outcomes if o is not None]

    # -- the ledger -------------------------------------------------------------------------

    def _claim(self, job: Job, nominal: int, now: int, state: str, delayed: bool) -> bool:
        """Insert the firing's ledger row; False when it exists (unless it is a dead run)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(_RUNS).values(
                        job=job.id,
                        scheduled_for=nominal,
                        state=state,
                        started_at=now,
                        delayed=delayed,
                    )
                )
            return True
        except IntegrityError:
            if state != "running":
                return False
        with self.engine.begin() as conn:  # a run whose process died mid-way is taken over
            taken = conn.execute(
                update(_RUNS)
                .where(
                    _RUNS.c.job == job.id,
                    _RUNS.c.scheduled_for == nominal,
                    _RUNS.c.state == "running",
                    _RUNS.c.started_at < now - STALE_RUN,
                )
                .values(started_at=now, delayed=delayed)
            )
        return taken.rowcount == 1

    def _finish(self, job: Job, nominal: int, state: str, detail: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(_RUNS)
                .where(_RUNS.c.job == job.id, _RUNS.c.scheduled_for == nominal)
                .values(state=state, finished_at=int(self.clock()), detail=detail)
            )

    def _skip(self, job: Job, nominal: int, now: int, detail: str) -> Outcome | None:
        if not self._claim(job, nominal, now, "skipped", False):
            return None
        log.warning("%s firing at %s skipped: %s", job.id, _stamp(nominal, job), detail)
        self._finish(job, nominal, "skipped", detail)
        return Outcome(job.id, nominal, "skipped", detail=detail)

    def _run(self, job: Job, nominal: int, now: int, delayed: bool) -> Outcome:
        if not self._claim(job, nominal, now, "running", delayed):
            return Outcome(job.id, nominal, "taken")
        try:
            detail = self.execute(job, nominal, delayed=delayed)
        except Exception:
            detail = traceback.format_exc(limit=3)
            log.exception("%s firing at %s failed", job.id, _stamp(nominal, job))
            self._finish(job, nominal, "failed", detail)
            return Outcome(job.id, nominal, "failed", delayed, detail)
        self._finish(job, nominal, "done", detail)
        log.info("%s firing at %s done: %s", job.id, _stamp(nominal, job), detail)
        return Outcome(job.id, nominal, "done", delayed, detail)

    # -- what the jobs do -------------------------------------------------------------------

    def posts(self, job: Job, nominal: int, *, delayed: bool = False) -> list[Post]:
        """The digest posts of a digest job's firing (also for `kpibot digest --dry-run`)."""
        assert job.team is not None
        if job.kind == "morning":
            digest = team_digest(self.figures, self.plans, job.team, now=nominal)
            return self.digests.morning(digest, now=nominal, delayed=delayed)
        if job.kind == "evening":
            period = day_of(today(nominal, job.timezone), job.timezone)
        else:
            week_start = self.organisation.settings.week_start
            period = last_week(nominal, job.timezone, week_start)
        found = recap(self.figures, self.plans, job.team, period, now=nominal)
        return [self.digests.recap(found, job.kind, delayed=delayed)]

    def execute(self, job: Job, nominal: int, *, delayed: bool = False) -> str:
        """Do one firing's work; a line saying what was done."""
        if job.kind == "freshness":
            return self._check_freshness(nominal)
        if job.kind == "alerts":
            return self.alerts.run(nominal)
        if job.kind == "appeals":
            return self.appeals.check(nominal)
        if job.kind == "restatements":
            sent = check_restatements(
                self.engine, self.organisation, self.figures, self.notifier, now=nominal
            )
            return f"{sent} revision notices"
        stored = 0
        for post in self.posts(job, nominal, delayed=delayed):
            for target in self.targets_of(job, post):
                key = f"{job.id}@{nominal}:{target.platform}:{target.channel or target.user}"
                if self.notifier.post(post.reply, target, key=key, kind="digest"):
                    stored += 1
                record_posted(self.engine, key, post.watched, now=nominal)
        return f"{stored} messages"

    def targets_of(self, job: Job, post: Post) -> list[Target]:
        """Where a post goes: the team's channels, or the person's own chat on one platform."""
        if post.person is None:
            assert job.team is not None
            channels = self.organisation.teams[job.team].channels
            return [
                Target(p, "", channel)
                for p in self.platforms
                if (channel := channels.get(p)) is not None
            ]
        person = self.organisation.people[post.person]
        for platform in self.platforms:
            user = person.chat.get(platform)
            if user:
                return [Target.direct(platform, "", user)]
        return []

    def _admins(self) -> list[PersonConfig]:
        return [p for p in self.organisation.people.values() if p.role == "admin"]

    def _check_freshness(self, now: int) -> str:
        limits = self.organisation.settings.freshness_hours.model_dump()
        silent = silent_sources(self.engine, limits, now)
        for source, last in sorted(silent.items()):
            hours = (now - last) // 3600
            for admin in self._admins():
                language = admin.language or self.organisation.settings.default_language
                text = (
                    f"⚠️ 数据源「{source}」已 {hours} 小时没有新数据（上限 {limits[source]} 小时），"
                    "相关数字可能过时，请检查导入。"
                    if language == "zh"
                    else f"⚠️ No new {source} data for {hours} hours (allowed: {limits[source]}); "
                    "figures from it may be stale. Please check the imports."
                )
                for target in self.targets_of(
                    Job("freshness", "freshness", None, "UTC", 0),
                    Post(Reply(text, language), admin.id),
                ):
                    # One notice per silent stretch: the key names the import it follows.
                    key = f"freshness:{source}:{last}:{target.platform}:{target.user}"
                    self.notifier.post(Reply(text, language), target, key=key, kind="notice")
        return f"silent: {', '.join(sorted(silent)) or 'none'}"

    # -- APScheduler --------------------------------------------------------------------------

    def start(self) -> None:
        """Catch up on missed firings, then let APScheduler wake each job at its times."""
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(self.run_due, id="catch-up")  # once, at start, off the caller's thread
        for job in self.jobs.values():
            scheduler.add_job(
                self.run_due,
                FiringTrigger(job),
                kwargs={"only": [job.id]},
                id=job.id,
                misfire_grace_time=job.grace,  # APScheduler's own default would be 1 s
                coalesce=True,
                max_instances=1,
            )
        scheduler.start()
        self._apscheduler = scheduler

    def stop(self) -> None:
        """Stop firing (a running job finishes)."""
        if self._apscheduler is not None:
            self._apscheduler.shutdown(wait=True)
            self._apscheduler = None

    def ledger(self, job: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
        query = select(_RUNS).order_by(_RUNS.c.scheduled_for.desc(), _RUNS.c.id.desc())
        if job is not None:
            query = query.where(_RUNS.c.job == job)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query.limit(limit)).mappings()]


def _stamp(instant: int, job: Job) -> str:
    return datetime.fromtimestamp(instant, zone(job.timezone)).strftime("%Y-%m-%d %H:%M %Z")
