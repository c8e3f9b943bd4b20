"""Digests: each team's morning stand-up, day-end recap and weekly report in the team's own time
zone and language (with each person's own morning numbers in private), and "revised" notices
when a posted number later moves."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from bot.chat.messages import Target
from bot.chat.registry import Feature, Registry
from bot.core import Core
from bot.features.digests.render import Digests, Post
from bot.features.digests.restatements import check_restatements, record_posted
from bot.jobs import Job, JobKind, every
from kpi_engine.digest import last_week, recap, team_digest
from kpi_engine.organisation import DigestTime, Organisation
from kpi_engine.periods import day_of, today

RESTATEMENTS_EVERY = 60 * 60
KINDS = ("morning", "evening", "weekly")


def digest_jobs(organisation: Organisation, kind: str) -> list[Job]:
    """Each team's digest of one kind, at its configured time, holidays skipped or shifted."""
    settings = organisation.settings
    found = []
    for team in organisation.teams.values():
        schedules = team.schedules or settings.schedules
        holidays = frozenset(settings.holidays) | frozenset(team.holidays)
        at: DigestTime | None = getattr(schedules, kind)
        if at is not None:
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
    return found


@dataclass
class DigestService:
    """The digests of one organisation: what each firing posts, and posting it."""

    core: Core
    digests: Digests

    def posts(self, job: Job, nominal: int, *, delayed: bool = False) -> list[Post]:
        """The posts of a digest firing (also what `kpibot digest --dry-run` shows)."""
        assert job.team is not None
        figures, plans = self.core.figures, self.core.plans
        kind = job.kind
        if kind == "morning":
            digest = team_digest(figures, plans, job.team, now=nominal)
            return self.digests.morning(digest, now=nominal, delayed=delayed)
        if kind == "evening":
            period = day_of(today(nominal, job.timezone), job.timezone)
        else:
            week_start = self.core.organisation.settings.week_start
            period = last_week(nominal, job.timezone, week_start)
        found = recap(figures, plans, job.team, period, now=nominal)
        return [self.digests.recap(found, kind, delayed=delayed)]

    def targets_of(self, job: Job, post: Post) -> list[Target]:
        """Where a post goes: the team's channels, or the person's own chat on one platform."""
        org = self.core.organisation
        platforms = [p for p in self.core.platforms if p != "console"]
        if post.person is None:
            assert job.team is not None
            channels = org.teams[job.team].channels
            return [
                Target(p, "", channel)
                for p in platforms
                if (channel := channels.get(p)) is not None
            ]
        person = org.people[post.person]
        for platform in platforms:
            user = person.chat.get(platform)
            if user:
                return [Target.direct(platform, "", user)]
        return []

    def run(self, job: Job, nominal: int, delayed: bool) -> str:
        """One firing: every post stored in the outbox, and the numbers it shows remembered."""
        stored = 0
        for post in self.posts(job, nominal, delayed=delayed):
            for target in self.targets_of(job, post):
                key = f"{job.id}@{nominal}:{target.platform}:{target.channel or target.user}"
                if self.core.notifier.post(post.reply, target, key=key, kind="digest"):
                    stored += 1
                record_posted(self.core.engine, key, post.watched, now=nominal)
        return f"{stored} messages"

    def restatements(self, nominal: int) -> str:
        """Revision notices for posted numbers that moved."""
        core = self.core
        sent = check_restatements(
            core.engine, core.organisation, core.figures, core.notifier, now=nominal
        )
        return f"{sent} revision notices"


def install(registry: Registry, core: Core) -> DigestService:
    """Register the digest and restatement jobs."""
    service = DigestService(core, Digests(core.organisation, core.engine, core.figures, core.plans))
    for kind in KINDS:
        registry.job(JobKind(kind, partial(digest_jobs, kind=kind), service.run))
    registry.job(
        JobKind(
            "restatements",
            every("restatements", RESTATEMENTS_EVERY),
            lambda job, nominal, delayed: service.restatements(nominal),
        )
    )
    return service


FEATURE = Feature("digests", install)
