"""Configuration history: the plans, targets and scorecards each closed month is judged by.

Editing a target must not silently change a month that is over. Each version of the
configuration a score depends on is stored (fingerprinted, as canonical JSON) when a process
first uses it; once a month has ended, it is bound to the version that was in force at its end,
and every score or target of a period ending in that month is computed with that version. Only an
explicit re-score (`ConfigHistory.rescore`) binds a closed month to another version. Every
version recorded, month closed and re-score is a row of `config_events`, with the actor, the time,
the subject and what it was before and after.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from kpi_engine.models import ConfigEvent, ConfigSnapshot, PeriodConfig
from kpi_engine.organisation import Organisation
from kpi_engine.periods import Period, month_of
from kpi_engine.plans import Plan, Target
from kpi_engine.scorecards import ScorecardRule
from kpi_engine.targets import Plans, TargetLine

_VERSIONS = ConfigSnapshot.__table__  # type: ignore[attr-defined]
_BINDINGS = PeriodConfig.__table__  # type: ignore[attr-defined]
_EVENTS = ConfigEvent.__table__  # type: ignore[attr-defined]
SYSTEM = "kpibot"  # the actor of what the bot does by itself


@dataclass(frozen=True)
class KpiConfig:
    """The parts of the configuration a score depends on."""

    plans: tuple[Plan, ...]
    targets: tuple[Target, ...]
    scorecards: tuple[ScorecardRule, ...]

    @classmethod
    def of(cls, organisation: Organisation) -> KpiConfig:
        """The organisation's current plans, targets and scorecards."""
        return cls(organisation.plans, organisation.targets, organisation.scorecards)

    def to_json(self) -> str:
        """Canonical JSON: the same configuration always gives the same text."""
        return json.dumps(_encode(self), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> KpiConfig:
        """The configuration stored by `to_json`."""
        decoded: KpiConfig = _decode(cls, json.loads(text))
        return decoded

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON, in hex."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ConfigVersion:
    """A stored configuration version."""

    id: int
    fingerprint: str
    recorded_at: int

    @property
    def label(self) -> str:
        """`v3 (3f2a9c1d7e0b)`."""
        return f"v{self.id} ({self.fingerprint[:12]})"


@dataclass(frozen=True)
class InForce:
    """The configuration a period is judged by."""

    config: KpiConfig
    plans: Plans
    version: ConfigVersion
    closed: bool  # the period's month has ended: its version is kept until a re-score
    month: str  # the month the period ends in, "2026-11"


@dataclass(frozen=True)
class Rescore:
    """What a re-score changed: the versions and the targets in force that month."""

    month: str
    before: ConfigVersion | None
    after: ConfigVersion
    target_changes: tuple[str, ...]  # "person:li.na gmv: 1500000 → 1800000"
    scorecards_changed: bool
    applied: bool
    scores: Mapping[str, tuple[Any, Any]] | None = None  # person → (before, after)


@dataclass(frozen=True)
class ConfigAuditEvent:
    """One row of the configuration audit trail."""

    id: int
    at: int
    actor: str
    kind: str
    subject: str
    before: Any
    after: Any
    reason: str


class ConfigHistory:
    """The stored versions of one organisation's KPI configuration, and the closed months'."""

    def __init__(self, engine: Engine, organisation: Organisation, *, now: int) -> None:
        self.engine = engine
        self.organisation = organisation
        self.current_config = KpiConfig.of(organisation)
        self._configs: dict[int, tuple[KpiConfig, Plans]] = {}
        self._bindings: dict[str, tuple[int, ConfigVersion]] = {}  # month → (read at, version)
        self.current_plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
        self.current = self.record(now)
        self._configs[self.current.id] = (self.current_config, self.current_plans)

    def record(self, now: int, actor: str = SYSTEM) -> ConfigVersion:
        """Store the current configuration as a new version unless it is the latest already."""
        content = self.current_config.to_json()
        fingerprint = hashlib.sha256(content.encode("utf-8")).hexdigest()
        with self.engine.begin() as conn:
            latest = _latest(conn, None)
            if latest is not None and latest.fingerprint == fingerprint:
                return latest
            new_id = conn.execute(
                insert(_VERSIONS)
                .values(
                    fingerprint=fingerprint, content=content, recorded_at=now, recorded_by=actor
                )
                .returning(_VERSIONS.c.id)
            ).scalar_one()
            version = ConfigVersion(int(new_id), fingerprint, now)
            before = None
            if latest is not None:
                before = {"version": latest.id, "fingerprint": latest.fingerprint}
            changes = self._changes(latest, conn)
            _event(
                conn,
                now,
                actor,
                "config_recorded",
                "config",
                before,
                {"version": version.id, "fingerprint": fingerprint, "changes": changes},
            )
        return version

    def in_force(self, period: Period, now: int) -> InForce:
        """The configuration `period` is judged by: its month's kept version once that month
        has ended (in the period's zone), else the current one."""
        month = month_of(period.last, period.timezone)
        label = month.label()
        if now < month.bounds()[1]:
            config, plans = self._configs[self.current.id]
            return InForce(config, plans, self.current, False, label)
        version = self._binding(label, month.bounds()[1], now)
        config, plans = self._load(version.id)
        return InForce(config, plans, version, True, label)

    def kept(self, month: str) -> tuple[ConfigVersion, KpiConfig, Plans] | None:
        """The version a month is bound to, if it has been closed."""
        with self.engine.begin() as conn:
            version = _bound(conn, month)
        return None if version is None else (version, *self._load(version.id))

    def rescore(
        self,
        month: str,
        actor: str,
        reason: str,
        now: int,
        *,
        apply: bool = True,
        scores: Mapping[str, tuple[Any, Any]] | None = None,
    ) -> Rescore:
        """Judge a closed month by the current configuration from now on, audited with the
        versions, the targets that change and `scores` (person → before, after)."""
        if not reason.strip():
            raise ValueError("a re-score needs a reason")
        kept = self.kept(month)
        before = None if kept is None else kept[0]
        old = None if kept is None else kept[1:]
        new = self._configs[self.current.id]
        first = date.fromisoformat(f"{month}-01")
        changes = _line_changes(
            old[1].lines(first) if old else [], new[1].lines(first), self.organisation
        )
        scorecards_changed = old is None or old[0].scorecards != new[0].scorecards
        result = Rescore(month, before, self.current, changes, scorecards_changed, False, scores)
        if not apply or (before is not None and before.id == self.current.id):
            return result
        by_side = [{p: pair[side] for p, pair in (scores or {}).items()} for side in (0, 1)]
        with self.engine.begin() as conn:
            values = {"version_id": self.current.id, "bound_at": now, "bound_by": actor}
            if before is None:
                conn.execute(insert(_BINDINGS).values(month=month, **values))
            else:
                conn.execute(update(_BINDINGS).where(_BINDINGS.c.month == month).values(**values))
            _event(
                conn,
                now,
                actor,
                "rescored",
                f"month:{month}",
                {**({} if before is None else _version_json(before)), "scores": by_side[0]},
                {
                    **_version_json(self.current),
                    "target_changes": list(changes),
                    "scorecards_changed": scorecards_changed,
                    "scores": by_side[1],
                },
                reason,
            )
        self._bindings.pop(month, None)
        return Rescore(month, before, self.current, changes, scorecards_changed, True, scores)

    def events(self, kind: str | None = None, subject: str | None = None) -> list[ConfigAuditEvent]:
        """The configuration audit trail, oldest first."""
        query = select(_EVENTS).order_by(_EVENTS.c.id)
        if kind is not None:
            query = query.where(_EVENTS.c.kind == kind)
        if subject is not None:
            query = query.where(_EVENTS.c.subject == subject)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            ConfigAuditEvent(
                r["id"],
                r["at"],
                r["actor"],
                r["kind"],
                r["subject"],
                None if r["before"] is None else json.loads(r["before"]),
                None if r["after"] is None else json.loads(r["after"]),
                r["reason"],
            )
            for r in rows
        ]

    def _binding(self, month: str, end: int, now: int) -> ConfigVersion:
        """The month's kept version, bound now (to the version in force at its end) if new."""
        cached = self._bindings.get(month)
        if cached is not None and now - cached[0] < 60:  # another process may re-score
            return cached[1]
        with self.engine.begin() as conn:
            version = _bound(conn, month)
        if version is None:
            try:
                with self.engine.begin() as conn:
                    version = _latest(conn, end) or self.current
                    conn.execute(
                        insert(_BINDINGS).values(
                            month=month, version_id=version.id, bound_at=now, bound_by=SYSTEM
                        )
                    )
                    _event(
                        conn, now, SYSTEM, "month_closed", f"month:{month}", None,
                        _version_json(version),
                    )  # fmt: skip
            except IntegrityError:  # another process bound it first
                with self.engine.begin() as conn:
                    version = _bound(conn, month)
                assert version is not None
        self._bindings[month] = (now, version)
        return version

    def _load(self, version_id: int) -> tuple[KpiConfig, Plans]:
        found = self._configs.get(version_id)
        if found is None:
            with self.engine.connect() as conn:
                content = conn.execute(
                    select(_VERSIONS.c.content).where(_VERSIONS.c.id == version_id)
                ).scalar_one()
            config = KpiConfig.from_json(content)
            plans = Plans(config.plans, config.targets, self.organisation.catalogue)
            found = self._configs[version_id] = (config, plans)
        return found

    def _changes(self, latest: ConfigVersion | None, conn: Connection) -> dict[str, int]:
        """How many plans, targets and scorecards were added and removed since `latest`."""
        if latest is None:
            old = KpiConfig((), (), ())
        else:
            content = conn.execute(
                select(_VERSIONS.c.content).where(_VERSIONS.c.id == latest.id)
            ).scalar_one()
            old = KpiConfig.from_json(content)
        new = self.current_config
        counts = {}
        for name in ("plans", "targets", "scorecards"):
            before = {json.dumps(_encode(x), sort_keys=True) for x in getattr(old, name)}
            after = {json.dumps(_encode(x), sort_keys=True) for x in getattr(new, name)}
            counts[f"{name}_added"] = len(after - before)
            counts[f"{name}_removed"] = len(before - after)
        return counts


_HISTORIES: list[ConfigHistory] = []


def history_of(engine: Engine, organisation: Organisation, *, now: int) -> ConfigHistory:
    """The configuration history for an engine and organisation, kept for the process (the
    current version is recorded the first time)."""
    for history in _HISTORIES:
        if history.engine is engine and history.organisation is organisation:
            return history
    history = ConfigHistory(engine, organisation, now=now)
    _HISTORIES.insert(0, history)
    del _HISTORIES[8:]
    return history


def _version_json(version: ConfigVersion) -> dict[str, Any]:
    return {"version": version.id, "fingerprint": version.fingerprint}


def _event(
    conn: Connection,
    at: int,
    actor: str,
    kind: str,
    subject: str,
    before: Any,
    after: Any,
    reason: str = "",
) -> None:
    conn.execute(
        insert(_EVENTS).values(
            at=at,
            actor=actor,
            kind=kind,
            subject=subject,
            before=None if before is None else json.dumps(before, ensure_ascii=False),
            after=None if after is None else json.dumps(after, ensure_ascii=False),
            reason=reason,
        )
    )


def _latest(conn: Connection, before: int | None) -> ConfigVersion | None:
    """The newest version (recorded before the instant `before`, when given)."""
    query = select(_VERSIONS.c.id, _VERSIONS.c.fingerprint, _VERSIONS.c.recorded_at)
    if before is not None:
        query = query.where(_VERSIONS.c.recorded_at < before)
    row = conn.execute(
        query.order_by(_VERSIONS.c.recorded_at.desc(), _VERSIONS.c.id.desc())
    ).first()
    return None if row is None else ConfigVersion(int(row[0]), row[1], int(row[2]))


def _version(conn: Connection, version_id: int) -> ConfigVersion:
    row = conn.execute(
        select(_VERSIONS.c.id, _VERSIONS.c.fingerprint, _VERSIONS.c.recorded_at).where(
            _VERSIONS.c.id == version_id
        )
    ).one()
    return ConfigVersion(int(row[0]), row[1], int(row[2]))


def _bound(conn: Connection, month: str) -> ConfigVersion | None:
    row = conn.execute(select(_BINDINGS.c.version_id).where(_BINDINGS.c.month == month)).first()
    return None if row is None else _version(conn, int(row[0]))


def _line_changes(
    old: list[TargetLine], new: list[TargetLine], organisation: Organisation
) -> tuple[str, ...]:
    """The targets in force one month that differ between two configurations."""

    def keyed(lines: list[TargetLine]) -> dict[tuple[str, str], Decimal]:
        return {
            (f"{x.scope.kind}:{x.scope.id}" if x.scope.id else x.scope.kind, x.metric): x.value
            for x in lines
        }

    before, after = keyed(old), keyed(new)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        if was != now:
            changes.append(f"{key[0]} {key[1]}: {_text(was)} → {_text(now)}")
    return tuple(changes)


def _text(value: Decimal | None) -> str:
    return "—" if value is None else f"{value.normalize():f}"


# A small, type-driven codec for the frozen dataclasses of the configuration: fields are read
# from their annotations, so a field added to Plan, Target or ScorecardRule is stored without
# code here.


def _encode(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, frozenset):  # in a canonical order, whatever its members are
        return sorted((_encode(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(kind: Any, data: Any) -> Any:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        if data is None:
            return None
        options = [a for a in get_args(kind) if a is not type(None)]
        return _decode(options[0], data)
    if origin is Literal:
        return data
    if origin is tuple:
        return tuple(_decode(get_args(kind)[0], item) for item in data)
    if origin is frozenset:
        return frozenset(_decode(get_args(kind)[0], item) for item in data)
    if origin in (dict, Mapping, typing.Mapping):
        value_type = get_args(kind)[1]
        return {key: _decode(value_type, item) for key, item in data.items()}
    if kind is Decimal:
        return Decimal(data)
    if kind is date:
        return date.fromisoformat(data)
    if isinstance(kind, type) and is_dataclass(kind):
        hints = get_type_hints(kind)
        return kind(**{f.name: _decode(hints[f.name], data[f.name]) for f in fields(kind)})
    return data
