"""The audit trails, read as one: alerts, appeals, corrections, outbox deliveries and the
general log (admins' actions, dead letters, configuration and target changes, re-scores,
refused attempts).

Each trail is append-only where it is kept; `trail` merges them in time order with filters
(kind, person, id, time range). An outbox message's queueing and delivery are read from the
outbox row itself; its dead letter and the admins' retries and drops from the general log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, insert, select

from kpi_engine.models import (
    Alert,
    AlertEvent,
    Appeal,
    AppealEvent,
    AuditLog,
    ConfigEvent,
    Correction,
    OutboxMessage,
)

_LOG = AuditLog.__table__  # type: ignore[attr-defined]
_ALERTS = Alert.__table__  # type: ignore[attr-defined]
_ALERT_EVENTS = AlertEvent.__table__  # type: ignore[attr-defined]
_APPEALS = Appeal.__table__  # type: ignore[attr-defined]
_APPEAL_EVENTS = AppealEvent.__table__  # type: ignore[attr-defined]
_CORRECTIONS = Correction.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
_CONFIG = ConfigEvent.__table__  # type: ignore[attr-defined]

# The trails `trail` reads, by kind; every other kind lives in the general log.
KINDS = ("alert", "appeal", "correction", "outbox", "config", "access", "apikey")


@dataclass(frozen=True)
class AuditEntry:
    """One thing that happened, by whom, to what."""

    at: int
    kind: str
    id: str  # the subject's id within its kind (an alert or appeal number, an outbox id…)
    actor: str  # a person id, "kpibot" or "cli"
    action: str
    person: str | None  # the person it concerns (an alert's owner, an appellant…)
    detail: str | None
    # The detail's parts as codes and values (a rule, a scope, a metric, an amount…), for
    # surfaces that write it in the reader's language (the dashboard); `detail` is the log line.
    facts: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data."""
        found = asdict(self)
        found["facts"] = dict(self.facts)
        return found


def _facts(*pairs: tuple[str, Any], extra: str | None = None) -> tuple[tuple[str, str], ...]:
    """Named parts of a detail (None left out), then those of a JSON object stored with the
    event (else the stored text as a note)."""
    found = [(k, str(v)) for k, v in pairs if v is not None and v != ""]
    if extra:
        try:
            data = json.loads(extra)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, dict):
                    found += [(k, str(v)) for k, v in value.items() if v is not None]
                elif value is not None and value != "":
                    found.append((key, str(value)))
        else:
            found.append(("note", extra))
    return tuple(found)


def record(
    conn: Connection,
    kind: str,
    subject: str,
    actor: str,
    action: str,
    *,
    at: int,
    person: str | None = None,
    detail: str | dict[str, Any] | None = None,
) -> None:
    """Append an entry to the general log, inside the caller's transaction."""
    text = (
        json.dumps(detail, ensure_ascii=False, sort_keys=True)
        if isinstance(detail, dict)
        else detail
    )
    conn.execute(
        insert(_LOG).values(
            at=at,
            kind=kind,
            subject=subject,
            actor=actor,
            action=action,
            person=person,
            detail=text,
        )
    )


_Query = TypeVar("_Query", bound=Select[Any])


def _person_of(scope: str | None) -> str | None:
    return scope.split(":", 1)[1] if scope and scope.startswith("person:") else None


def _window(query: _Query, column: Any, since: int | None, until: int | None) -> _Query:
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


def trail(
    engine: Engine,
    *,
    kinds: Sequence[str] | None = None,
    person: str | None = None,
    id: str | None = None,
    since: int | None = None,
    until: int | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """The newest `limit` entries that match, oldest first.

    `person` matches the actor or the person an entry concerns; `id` an entry's subject id.
    """
    wanted = set(kinds or KINDS)
    found: list[AuditEntry] = []
    with engine.connect() as conn:
        if "alert" in wanted:
            found += _alerts(conn, id, since, until)
        if "appeal" in wanted:
            found += _appeals(conn, id, since, until)
        if "correction" in wanted:
            found += _corrections(conn, id, since, until)
        if "outbox" in wanted:
            found += _outbox(conn, id, since, until)
        if "config" in wanted:
            found += _config(conn, id, since, until)
        logged = wanted - {"alert", "appeal", "correction", "config"}
        if logged:
            query = _window(select(_LOG).where(_LOG.c.kind.in_(logged)), _LOG.c.at, since, until)
            if id is not None:
                query = query.where(_LOG.c.subject == id)
            found += [
                AuditEntry(
                    r.at,
                    r.kind,
                    r.subject,
                    r.actor,
                    r.action,
                    r.person,
                    r.detail,
                    _facts(extra=r.detail),
                )
                for r in conn.execute(query.order_by(_LOG.c.id))
            ]
    if person is not None:
        found = [e for e in found if person in (e.actor, e.person)]
    found.sort(key=lambda e: e.at)  # stable: each trail's own order within a second
    return found[-limit:]


def _subject_id(id: str | None) -> int | None:
    """An entity number from an `--id`; -1 (matching nothing) for a value that is not one."""
    if id is None:
        return None
    return int(id) if id.isdigit() and len(id) < 19 else -1


def _alerts(
    conn: Connection, id: str | None, since: int | None, until: int | None
) -> list[AuditEntry]:
    query = select(
        _ALERT_EVENTS.c.alert_id,
        _ALERT_EVENTS.c.at,
        _ALERT_EVENTS.c.actor,
        _ALERT_EVENTS.c.kind,
        _ALERT_EVENTS.c.detail,
        _ALERTS.c.scope,
        _ALERTS.c.rule,
        _ALERTS.c.currency,
    ).join(_ALERTS, _ALERTS.c.id == _ALERT_EVENTS.c.alert_id)
    query = _window(query, _ALERT_EVENTS.c.at, since, until)
    if (number := _subject_id(id)) is not None:
        query = query.where(_ALERT_EVENTS.c.alert_id == number)
    return [
        AuditEntry(
            r.at,
            "alert",
            str(r.alert_id),
            r.actor,
            r.kind,
            _person_of(r.scope),
            f"{r.rule} {r.scope}" + (f": {r.detail}" if r.detail else ""),
            _facts(("rule", r.rule), ("scope", r.scope), ("currency", r.currency), extra=r.detail),
        )
        for r in conn.execute(query.order_by(_ALERT_EVENTS.c.id))
    ]


def _appeals(
    conn: Connection, id: str | None, since: int | None, until: int | None
) -> list[AuditEntry]:
    query = select(
        _APPEAL_EVENTS.c.appeal_id,
        _APPEAL_EVENTS.c.at,
        _APPEAL_EVENTS.c.actor,
        _APPEAL_EVENTS.c.kind,
        _APPEAL_EVENTS.c.detail,
        _APPEALS.c.appellant,
        _APPEALS.c.metric,
        _APPEALS.c.scope,
        _APPEALS.c.first_day,
        _APPEALS.c.last_day,
        _APPEALS.c.currency,
    ).join(_APPEALS, _APPEALS.c.id == _APPEAL_EVENTS.c.appeal_id)
    query = _window(query, _APPEAL_EVENTS.c.at, since, until)
    if (number := _subject_id(id)) is not None:
        query = query.where(_APPEAL_EVENTS.c.appeal_id == number)
    entries = []
    for r in conn.execute(query.order_by(_APPEAL_EVENTS.c.id)):
        days = r.first_day.isoformat() + (
            f"..{r.last_day.isoformat()}" if r.last_day != r.first_day else ""
        )
        what = f"{r.metric} {r.scope} {days}"
        entries.append(
            AuditEntry(
                r.at,
                "appeal",
                str(r.appeal_id),
                r.actor,
                r.kind,
                r.appellant,
                what + (f": {r.detail}" if r.detail else ""),
                _facts(
                    ("metric", r.metric),
                    ("scope", r.scope),
                    ("first_day", r.first_day.isoformat()),
                    ("last_day", r.last_day.isoformat()),
                    ("currency", r.currency),
                    extra=r.detail,
                ),
            )
        )
    return entries


def _corrections(
    conn: Connection, id: str | None, since: int | None, until: int | None
) -> list[AuditEntry]:
    query = _window(select(_CORRECTIONS), _CORRECTIONS.c.created_at, since, until)
    if (number := _subject_id(id)) is not None:
        query = query.where(_CORRECTIONS.c.id == number)
    return [
        AuditEntry(
            r.created_at,
            "correction",
            str(r.id),
            r.created_by,
            "corrected",
            _person_of(r.scope),
            f"{r.metric} {r.scope} {r.day.isoformat()} {r.delta}"
            + (f" {r.currency}" if r.currency else "")
            + (f" (appeal #{r.appeal_id})" if r.appeal_id is not None else "")
            + (f": {r.reason}" if r.reason else ""),
            _facts(
                ("metric", r.metric),
                ("scope", r.scope),
                ("first_day", (r.first_day or r.day).isoformat()),
                ("last_day", r.day.isoformat()),
                ("amount", r.delta if r.claimed is None else None),
                ("claimed", r.claimed),
                ("reported", r.reported),
                ("currency", r.currency),
                ("appeal", r.appeal_id),
                ("reason", r.reason),
            ),
        )
        for r in conn.execute(query.order_by(_CORRECTIONS.c.id))
    ]


def _outbox(
    conn: Connection, id: str | None, since: int | None, until: int | None
) -> list[AuditEntry]:
    query = select(
        _OUTBOX.c.id,
        _OUTBOX.c.kind,
        _OUTBOX.c.platform,
        _OUTBOX.c.channel,
        _OUTBOX.c.user,
        _OUTBOX.c.state,
        _OUTBOX.c.attempts,
        _OUTBOX.c.error,
        _OUTBOX.c.created_at,
        _OUTBOX.c.sent_at,
    )
    if (number := _subject_id(id)) is not None:
        query = query.where(_OUTBOX.c.id == number)
    elif since is not None:
        query = query.where(_OUTBOX.c.created_at >= since - 86400)  # sent within a day
    entries = []
    for r in conn.execute(query.order_by(_OUTBOX.c.id)):
        where = f"{r.kind} to {r.platform}:{r.user or r.channel}"
        parts = (("message", r.kind), ("platform", r.platform), ("to", r.user or r.channel))
        entries.append(
            AuditEntry(
                r.created_at, "outbox", str(r.id), "kpibot", "queued", None, where, _facts(*parts)
            )
        )
        if r.state == "sent" and r.sent_at is not None:
            tries = f" after {r.attempts} attempts" if r.attempts > 1 else ""
            attempts = ("attempts", r.attempts if r.attempts > 1 else None)
            entries.append(
                AuditEntry(
                    r.sent_at,
                    "outbox",
                    str(r.id),
                    "kpibot",
                    "sent",
                    None,
                    where + tries,
                    _facts(*parts, attempts),
                )
            )
    return [
        e for e in entries if (since is None or e.at >= since) and (until is None or e.at < until)
    ]


def _config(
    conn: Connection, id: str | None, since: int | None, until: int | None
) -> list[AuditEntry]:
    """Configuration versions recorded, months closed on one, re-scores (kpi_engine.history)."""
    query = _window(select(_CONFIG), _CONFIG.c.at, since, until)
    if id is not None:
        query = query.where(_CONFIG.c.subject.in_((id, f"month:{id}")))
    entries = []
    for r in conn.execute(query.order_by(_CONFIG.c.id)):
        detail = r.reason or None
        version = None
        if r.after:
            after = json.loads(r.after)
            version = after.get("version") if isinstance(after, dict) else None
            if version is not None:
                detail = f"version {version}" + (f": {r.reason}" if r.reason else "")
        facts = _facts(("version", version), ("reason", r.reason))
        entries.append(AuditEntry(r.at, "config", r.subject, r.actor, r.kind, None, detail, facts))
    return entries


def kinds_of(text: Iterable[str]) -> list[str]:
    """Kinds from `--kind` values (comma-separated allowed); ValueError names an unknown one."""
    chosen = [k.strip() for part in text for k in part.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown kind {unknown[0]!r}; kinds: {', '.join(KINDS)}")
    return chosen
