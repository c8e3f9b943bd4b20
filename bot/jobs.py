"""Scheduled jobs: when each fires (a team's digest time on its weekdays, holidays skipped or
shifted, a deterministic jitter; or every N seconds), and the kinds of job features register.

A feature registers a `JobKind`: how to list its jobs for an organisation (one per team for
the digests, one organisation-wide check for alerts…) and how to run one firing. The scheduler
(`bot.scheduler`) claims each firing once, across replicas, and runs it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from kpi_engine.instants import zone
from kpi_engine.organisation import WEEKDAYS, DigestTime, Organisation


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


@dataclass(frozen=True)
class JobKind:
    """A kind of job a feature runs: its jobs for an organisation, and one firing's work
    (job, nominal firing time, delayed?) → a line saying what was done."""

    kind: str
    schedule: Callable[[Organisation], list[Job]]
    run: Callable[[Job, int, bool], str]


def every(kind: str, seconds: int, grace: int | None = None) -> Callable[[Organisation], list[Job]]:
    """The schedule of an organisation-wide check that runs every `seconds`."""

    def schedule(organisation: Organisation) -> list[Job]:
        misfire = organisation.settings.schedules.misfire_grace_minutes * 60
        return [
            Job(kind, kind, None, "UTC", grace if grace is not None else misfire, every=seconds)
        ]

    return schedule
