"""The scheduler: runs every registered job's firings once each, across replicas.

Features register kinds of job (`bot.jobs.JobKind`): the digests one per team in the team's
own time zone, the checks (alerts, appeals, restatements, data freshness, shop syncs) every
few minutes. APScheduler 3 wakes each job at its next firing through `FiringTrigger`; what
makes a firing happen once is the run ledger: a `scheduled_runs` row with the unique (job,
scheduled_for) is inserted before the job runs, so of several replicas — or a replica
restarted mid-run — exactly one runs it. Messages are keyed by job and firing in the outbox,
so a run repeated after a crash adds nothing that was already stored.

A firing missed while the bot was down is run when it starts again, marked "(delayed)", if it
is still within `misfire_grace_minutes`; beyond that it is recorded as skipped and logged.
`run_soon(kind)` runs a check now, off the caller's thread (a chat handler asking for the
restatement check after an appeal is accepted).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.jobs import Job, JobKind
from kpi_engine.clock import Clock, system_clock
from kpi_engine.instants import zone
from kpi_engine.models import ScheduledRun
from kpi_engine.organisation import Organisation

log = logging.getLogger(__name__)
_RUNS = ScheduledRun.__table__  # type: ignore[attr-defined]

# A run still "running" this long after it started died with its process: run it again.
STALE_RUN = 15 * 60
# Later than this after its due time, a digest says it is delayed.
DELAYED_AFTER = 5 * 60


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

    __slots__ = ("clock", "job")

    def __init__(self, job: Job, clock: Clock) -> None:
        self.job = job
        self.clock = clock

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> Any:
        # APScheduler counts in its own wall time; the job's calendar is on our clock (which
        # may be pinned to another moment): translate by the difference between the two.
        offset = self.clock() - now.timestamp()
        after = previous_fire_time or now - timedelta(seconds=1)
        due = self.job.next_due(int(after.timestamp() + offset))
        return None if due is None else datetime.fromtimestamp(due - offset, now.tzinfo)


class Scheduler:
    """Runs the registered jobs' firings once each, by the run ledger."""

    def __init__(
        self,
        organisation: Organisation,
        engine: Engine,
        kinds: Mapping[str, JobKind],
        *,
        clock: Clock = system_clock,
    ) -> None:
        self.organisation = organisation
        self.engine = engine
        self.kinds = dict(kinds)
        self.clock = clock
        self.jobs = {
            job.id: job for kind in self.kinds.values() for job in kind.schedule(organisation)
        }
        self._apscheduler: BackgroundScheduler | None = None
        self._soon = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-soon")

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

    def execute(self, job: Job, nominal: int, *, delayed: bool = False) -> str:
        """Do one firing's work; a line saying what was done."""
        return self.kinds[job.kind].run(job, nominal, delayed)

    def run_soon(self, kind: str) -> None:
        """Run a check's job now, off the caller's thread (outside the ledger: it may run
        again at its own time, and its work is idempotent)."""
        job = next((j for j in self.jobs.values() if j.kind == kind), None)
        if job is None:
            return

        def run() -> None:
            try:
                self.execute(job, int(self.clock()))
            except Exception:
                log.exception("%s, run soon, failed", kind)

        self._soon.submit(run)

    # -- APScheduler --------------------------------------------------------------------------

    def start(self) -> None:
        """Catch up on missed firings, then let APScheduler wake each job at its times."""
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(self.run_due, id="catch-up")  # once, at start, off the caller's thread
        for job in self.jobs.values():
            scheduler.add_job(
                self.run_due,
                FiringTrigger(job, self.clock),
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
        self._soon.shutdown(wait=True)

    def ledger(self, job: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
        query = select(_RUNS).order_by(_RUNS.c.scheduled_for.desc(), _RUNS.c.id.desc())
        if job is not None:
            query = query.where(_RUNS.c.job == job)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query.limit(limit)).mappings()]


def _stamp(instant: int, job: Job) -> str:
    return datetime.fromtimestamp(instant, zone(job.timezone)).strftime("%Y-%m-%d %H:%M %Z")
