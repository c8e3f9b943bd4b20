"""Appeals of disputed numbers: the snapshot of what was reported, the claim, the review, and
the correction an accepted appeal makes.

States: open → in_review → accepted / rejected, and withdrawn (by the appellant) from open or
in review. Each change is one conditional UPDATE on the appeal's `version` with its
`appeal_events` row (append-only); accepting also writes the `corrections` row in the same
transaction, so a figure is corrected exactly when its appeal is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from kpi_engine.figures import Figure, Figures, still_owed, storable_amount
from kpi_engine.models import Appeal, AppealEvent, Correction
from kpi_engine.periods import Period
from kpi_engine.scopes import Scope
from kpi_engine.units import reading, writing

_APPEALS = Appeal.__table__  # type: ignore[attr-defined]
_EVENTS = AppealEvent.__table__  # type: ignore[attr-defined]
_CORRECTIONS = Correction.__table__  # type: ignore[attr-defined]

OPEN = ("open", "in_review")
MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "review": (("open",), "in_review"),
    "accept": (OPEN, "accepted"),
    "reject": (OPEN, "rejected"),
    "withdraw": (OPEN, "withdrawn"),
}


@dataclass(frozen=True)
class AppealRow:
    """An appeal as stored."""

    id: int
    appellant: str
    metric: str
    scope: str
    first_day: date
    last_day: date
    timezone: str
    reported_value: Decimal | None
    reported_as_of: int | None
    currency: str | None
    claimed_value: Decimal
    reason: str
    evidence: tuple[str, ...]
    state: str
    version: int
    reviewer: str
    escalated_to: str | None
    platform: str
    workspace: str
    channel: str
    thread: str | None
    created_at: int
    due_at: int
    reminded_at: int | None
    decided_at: int | None
    decided_by: str | None
    decision_note: str | None

    @property
    def delta(self) -> Decimal:
        """What accepting it adds to the figure."""
        return self.claimed_value - (self.reported_value or Decimal(0))


def _row(data: Any) -> AppealRow:
    return AppealRow(
        id=data["id"],
        appellant=data["appellant"],
        metric=data["metric"],
        scope=data["scope"],
        first_day=data["first_day"],
        last_day=data["last_day"],
        timezone=data["timezone"],
        reported_value=None if data["reported_value"] is None else Decimal(data["reported_value"]),
        reported_as_of=data["reported_as_of"],
        currency=data["currency"],
        claimed_value=Decimal(data["claimed_value"]),
        reason=data["reason"],
        evidence=tuple(json.loads(data["evidence"] or "[]")),
        state=data["state"],
        version=data["version"],
        reviewer=data["reviewer"],
        escalated_to=data["escalated_to"],
        platform=data["platform"],
        workspace=data["workspace"],
        channel=data["channel"],
        thread=data["thread"],
        created_at=data["created_at"],
        due_at=data["due_at"],
        reminded_at=data["reminded_at"],
        decided_at=data["decided_at"],
        decided_by=data["decided_by"],
        decision_note=data["decision_note"],
    )


@dataclass(frozen=True)
class Moved:
    """The outcome of a move: `ok`, or why not ("missing", "stale", "not_allowed_from:<s>")."""

    ok: bool
    appeal: AppealRow | None
    why: str = ""


class AppealStore:
    """Appeals in the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _event(
        self, conn: Connection, appeal_id: int, at: int, actor: str, kind: str, **detail: Any
    ) -> None:
        conn.execute(
            insert(_EVENTS).values(
                appeal_id=appeal_id,
                at=at,
                actor=actor,
                kind=kind,
                detail=json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
            )
        )

    def open(
        self,
        *,
        appellant: str,
        figure: Figure,
        scope: str,
        claimed: Decimal,
        reason: str,
        evidence: list[str],
        reviewer: str,
        platform: str,
        workspace: str,
        channel: str,
        now: int,
        sla_hours: int,
    ) -> AppealRow:
        """Record an appeal with the snapshot of the figure as it was reported."""
        values = {
            "appellant": appellant,
            "metric": figure.metric,
            "scope": scope,
            "first_day": figure.period.first,
            "last_day": figure.period.last,
            "timezone": figure.period.timezone,
            "reported_value": None if figure.value is None else str(figure.value),
            "reported_as_of": figure.as_of,
            "currency": figure.currency,
            "claimed_value": str(claimed),
            "reason": reason,
            "evidence": json.dumps(evidence, ensure_ascii=False),
            "state": "open",
            "version": 1,
            "reviewer": reviewer,
            "platform": platform,
            "workspace": workspace,
            "channel": channel,
            "created_at": now,
            "due_at": now + sla_hours * 3600,
        }
        with writing(self.engine) as conn:
            new_id = conn.execute(
                insert(_APPEALS).values(**values).returning(_APPEALS.c.id)
            ).scalar_one()
            self._event(
                conn,
                new_id,
                now,
                appellant,
                "opened",
                reported=values["reported_value"],
                claimed=values["claimed_value"],
                as_of=figure.as_of,
                provisional=figure.provisional,
            )
        found = self.get(new_id)
        assert found is not None
        return found

    def open_for(self, appellant: str, metric: str, first: date, last: date) -> AppealRow | None:
        """The appellant's appeal on this figure that is still open or in review, if any."""
        with reading(self.engine) as conn:
            row = (
                conn.execute(
                    select(_APPEALS).where(
                        _APPEALS.c.appellant == appellant,
                        _APPEALS.c.metric == metric,
                        _APPEALS.c.first_day == first,
                        _APPEALS.c.last_day == last,
                        _APPEALS.c.state.in_(("open", "in_review")),
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _row(row)

    def get(self, appeal_id: int) -> AppealRow | None:
        """One appeal, or None."""
        with reading(self.engine) as conn:
            data = (
                conn.execute(select(_APPEALS).where(_APPEALS.c.id == appeal_id)).mappings().first()
            )
        return _row(data) if data else None

    def listing(
        self,
        *,
        appellants: list[str] | None = None,
        states: tuple[str, ...] | None = None,
        limit: int = 50,
    ) -> list[AppealRow]:
        """The newest `limit` appeals (of these appellants, in these states), newest first."""
        query = select(_APPEALS)
        if appellants is not None:
            query = query.where(_APPEALS.c.appellant.in_(appellants))
        if states is not None:
            query = query.where(_APPEALS.c.state.in_(states))
        with reading(self.engine) as conn:
            rows = conn.execute(query.order_by(_APPEALS.c.id.desc()).limit(limit)).mappings()
            return [_row(r) for r in rows]

    def events(self, appeal_id: int) -> list[tuple[str, str, str | None]]:
        """(kind, actor, detail) of the appeal's audit trail, in order."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(_EVENTS.c.kind, _EVENTS.c.actor, _EVENTS.c.detail)
                .where(_EVENTS.c.appeal_id == appeal_id)
                .order_by(_EVENTS.c.id)
            ).all()
        return [(k, a, d) for k, a, d in rows]

    def _update(
        self,
        conn: Connection,
        appeal: AppealRow,
        allowed: tuple[str, ...],
        values: Mapping[str, Any],
    ) -> bool:
        result = conn.execute(
            update(_APPEALS)
            .where(
                _APPEALS.c.id == appeal.id,
                _APPEALS.c.version == appeal.version,
                _APPEALS.c.state.in_(allowed),
            )
            .values(version=_APPEALS.c.version + 1, **values)
        )
        return result.rowcount == 1

    def move(
        self,
        appeal_id: int,
        move: str,
        actor: str,
        now: int,
        *,
        note: str | None = None,
        version: int | None = None,
    ) -> Moved:
        """review, accept (with its correction), reject (with a reason) or withdraw."""
        appeal = self.get(appeal_id)
        if appeal is None:
            return Moved(False, None, "missing")
        if version is not None and version != appeal.version:
            return Moved(False, appeal, "stale")
        allowed, state = MOVES[move]
        if appeal.state not in allowed:
            return Moved(False, appeal, f"not_allowed_from:{appeal.state}")
        values: dict[str, Any] = {"state": state}
        if move in ("accept", "reject", "withdraw"):
            values.update(decided_at=now, decided_by=actor, decision_note=note)
        with writing(self.engine) as conn:
            if not self._update(conn, appeal, allowed, values):
                return Moved(False, self.get(appeal_id), "stale")
            self._event(conn, appeal.id, now, actor, state, note=note)
            if move == "accept":
                conn.execute(
                    insert(_CORRECTIONS).values(
                        appeal_id=appeal.id,
                        metric=appeal.metric,
                        scope=appeal.scope,
                        day=appeal.last_day,
                        first_day=appeal.first_day,
                        timezone=appeal.timezone,
                        delta=str(appeal.delta),
                        claimed=str(appeal.claimed_value),
                        reported=str(appeal.reported_value or 0),
                        currency=appeal.currency,
                        created_by=actor,
                        created_at=now,
                        reason=note or appeal.reason,
                    )
                )
        return Moved(True, self.get(appeal_id))

    def set_thread(self, appeal_id: int, channel: str, thread: str) -> None:
        """Remember the first message of the appeal's thread."""
        with writing(self.engine) as conn:
            conn.execute(
                update(_APPEALS)
                .where(_APPEALS.c.id == appeal_id)
                .values(channel=channel, thread=thread)
            )

    def overdue(self, now: int) -> list[AppealRow]:
        """Open appeals past their SLA and not yet reminded."""
        with reading(self.engine) as conn:
            rows = (
                conn.execute(
                    select(_APPEALS).where(
                        _APPEALS.c.state.in_(OPEN),
                        _APPEALS.c.due_at <= now,
                        _APPEALS.c.reminded_at.is_(None),
                    )
                )
                .mappings()
                .all()
            )
        return [_row(r) for r in rows]

    def note_divergence(self, appeal_id: int, raw: Decimal | None, now: int) -> bool:
        """Record, once, that the data of an accepted appeal went past its claimed value; True
        the first time (the reviewer is to be told)."""
        with writing(self.engine) as conn:
            seen = conn.execute(
                select(_EVENTS.c.id).where(
                    _EVENTS.c.appeal_id == appeal_id, _EVENTS.c.kind == "diverged"
                )
            ).first()
            if seen is not None:
                return False
            self._event(conn, appeal_id, now, "kpibot", "diverged", raw=raw)
        return True

    def remind(self, appeal: AppealRow, now: int, escalated_to: str | None) -> bool:
        """Mark an overdue appeal reminded (and escalated), once."""
        with writing(self.engine) as conn:
            done = self._update(
                conn, appeal, OPEN, {"reminded_at": now, "escalated_to": escalated_to}
            )
            if done:
                self._event(conn, appeal.id, now, "kpibot", "reminded", escalated_to=escalated_to)
        return done


@dataclass(frozen=True)
class CorrectionState:
    """An accepted correction beside the data now: what the raw figure of the appealed period
    is, what the correction still adds, and whether the data has gone past the claim."""

    id: int
    appeal_id: int | None
    metric: str
    scope: str
    period: Period
    currency: str | None
    claimed: Decimal
    reported: Decimal
    raw: Decimal | None
    adds: Decimal

    @property
    def diverged(self) -> bool:
        """True when the raw data has passed the accepted value (in the claim's direction):
        the correction adds nothing any more and the reviewer should look again."""
        if self.raw is None:
            return False
        if self.claimed > self.reported:
            return self.raw > self.claimed
        if self.claimed < self.reported:
            return self.raw < self.claimed
        return False


def correction_states(figures: Figures, *, now: int, since: int = 0) -> list[CorrectionState]:
    """Every correction accepted at or after `since` with a claimed value, as the data stands."""
    c = _CORRECTIONS
    with figures.engine.connect() as conn:
        rows = (
            conn.execute(
                select(c).where(c.c.claimed.is_not(None), c.c.created_at >= since).order_by(c.c.id)
            )
            .mappings()
            .all()
        )
    states = []
    for row in rows:
        if not all(storable_amount(row[k]) for k in ("delta", "claimed", "reported")):
            continue  # left out of the figures too (and said so there)
        kind, _, ident = str(row["scope"]).partition(":")
        if (kind == "person" and ident not in figures.organisation.people) or (
            kind == "team" and ident not in figures.organisation.teams
        ):
            continue  # no longer in the configuration
        period = Period("custom", row["first_day"] or row["day"], row["day"], row["timezone"])
        scope = Scope(kind, ident)  # type: ignore[arg-type]
        raw = figures.uncorrected(
            row["metric"], scope, period, now=now, currency=row["currency"]
        ).value
        claimed, reported = Decimal(row["claimed"]), Decimal(row["reported"])
        states.append(
            CorrectionState(
                row["id"],
                row["appeal_id"],
                row["metric"],
                row["scope"],
                period,
                row["currency"],
                claimed,
                reported,
                raw,
                still_owed(claimed, reported, raw),
            )
        )
    return states
