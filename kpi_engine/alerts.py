"""Alerts: rules evaluated against the figures, and the alert lifecycle with its audit trail.

A rule (`AlertRuleConfig`, in the `alerts:` config section) is observed for each of its scopes
(`observe`); `AlertStore.record` turns observations into state: a breach that held for `hold`
evaluations opens an alert (one open alert per rule × scope × period, enforced by a partial
unique index), a clear observation resolves it (and re-arms the rule), and a new period resolves
the old period's alert. People act on alerts (`AlertStore.act`): acknowledge, snooze, mark not a
problem, resolve. Every change is one conditional UPDATE on the row's `version` together with
its `alert_events` row, so an acknowledgement, an auto-resolve and an escalation racing each
other leave one consistent state and an audit trail that matches it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from kpi_engine.calendar import alert_behaviour
from kpi_engine.figures import Figure, Figures
from kpi_engine.freshness import last_data, last_imports
from kpi_engine.instants import zone
from kpi_engine.models import Alert, AlertEvent, AlertStreak
from kpi_engine.organisation import AlertRuleConfig, Organisation
from kpi_engine.periods import Period, day_of, earlier_period, month_of, today, week_of
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans
from kpi_engine.units import reading, writing

_ALERTS = Alert.__table__  # type: ignore[attr-defined]
_EVENTS = AlertEvent.__table__  # type: ignore[attr-defined]
_STREAKS = AlertStreak.__table__  # type: ignore[attr-defined]

OPEN_STATES = ("firing", "acknowledged", "snoozed")
# Which states each action may start from.
ACTIONS: dict[str, tuple[str, ...]] = {
    "ack": ("firing", "snoozed"),
    "snooze": ("firing", "acknowledged"),
    "false_alarm": OPEN_STATES,
    "resolve": OPEN_STATES,
}


@dataclass(frozen=True)
class Observation:
    """One rule looked at for one scope, now."""

    rule: AlertRuleConfig
    scope: Scope
    period: Period
    period_key: str
    breached: bool
    evaluated: bool  # False when the sample was too small, the data not settled or incomplete
    value: Decimal | None = None
    threshold: Decimal | None = None
    target: Decimal | None = None
    currency: str | None = None
    provisional: bool = False
    detail: Mapping[str, str] | None = None  # e.g. pace, change, hours silent


@dataclass(frozen=True)
class AlertRow:
    """An alert as stored."""

    id: int
    rule: str
    scope: str
    period_key: str
    metric: str
    state: str
    version: int
    value: Decimal | None
    threshold: Decimal | None
    target: Decimal | None
    currency: str | None
    reason: str
    provisional: bool
    level: int
    notified: int
    last_notified_at: int | None
    opened_at: int
    acked_by: str | None
    acked_at: int | None
    note: str | None
    snoozed_until: int | None
    resolved_at: int | None
    resolved_by: str | None
    false_alarm: bool
    detail: Mapping[str, str]

    @property
    def subject(self) -> Scope:
        kind, _, ident = self.scope.partition(":")
        return Scope(kind, ident)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Acted:
    """What an action did: `ok`, or why not ("stale", "not_allowed_from:<state>", "missing")."""

    ok: bool
    alert: AlertRow | None
    why: str = ""


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _row(data: Any, detail: Mapping[str, str] | None = None) -> AlertRow:
    return AlertRow(
        id=data["id"],
        rule=data["rule"],
        scope=data["scope"],
        period_key=data["period_key"],
        metric=data["metric"],
        state=data["state"],
        version=data["version"],
        value=_dec(data["value"]),
        threshold=_dec(data["threshold"]),
        target=_dec(data["target"]),
        currency=data["currency"],
        reason=data["reason"],
        provisional=data["provisional"],
        level=data["level"],
        notified=data["notified"],
        last_notified_at=data["last_notified_at"],
        opened_at=data["opened_at"],
        acked_by=data["acked_by"],
        acked_at=data["acked_at"],
        note=data["note"],
        snoozed_until=data["snoozed_until"],
        resolved_at=data["resolved_at"],
        resolved_by=data["resolved_by"],
        false_alarm=data["false_alarm"],
        detail=detail or {},
    )


# -- observing ------------------------------------------------------------------------------


def scopes_of(rule: AlertRuleConfig, organisation: Organisation) -> list[Scope]:
    """The scopes a rule watches: one, or every person of a role."""
    if rule.scope == "company":
        return [Scope("company")]
    kind, _, ident = rule.scope.partition(":")
    if kind == "role":
        return [Scope("person", p.id) for p in organisation.people.values() if p.role == ident]
    return [Scope(kind, ident)]  # type: ignore[arg-type]


def period_of(rule: AlertRuleConfig, timezone: str, now: int, week_start: str) -> Period:
    """The rule's period containing `now`, on the scope's clock."""
    day = today(now, timezone)
    if rule.period == "today":
        return day_of(day, timezone)
    if rule.period == "this_week":
        return week_of(day, timezone, week_start)  # type: ignore[arg-type]
    return month_of(day, timezone)


def active(rule: AlertRuleConfig, plans: Plans, day: Any) -> bool:
    """A rule tied to a KPI plan applies while that plan is in force."""
    if rule.plan is None:
        return True
    plan = plans.plan_on(day)
    return plan is not None and plan.id == rule.plan


def observe(
    rule: AlertRuleConfig,
    figures: Figures,
    plans: Plans,
    organisation: Organisation,
    now: int,
    *,
    imports: Callable[[], Mapping[str, int]] | None = None,
) -> list[Observation]:
    """The rule's condition for each of its scopes, now."""
    found = []
    condition = rule.condition
    week_start = organisation.settings.week_start
    periods = {
        scope: period_of(rule, figures.timezone(scope), now, week_start)
        for scope in scopes_of(rule, organisation)
    }
    # Every scope's figures at once, per period (a role's 2,000 people are one read).
    computed: dict[Scope, dict[str, Figure]] = {}
    earlier: dict[Scope, Figure] = {}
    if condition.kind != "stale":
        names = [rule.metric, *([rule.min_sample.metric] if rule.min_sample else [])]
        groups: dict[Period, list[Scope]] = {}
        for scope, period in periods.items():
            if active(rule, plans, period.first):
                groups.setdefault(period, []).append(scope)
        with figures.held():
            for period, group in groups.items():
                computed.update(figures.figures_of(names, group, period, now=now))
                if condition.kind == "change":
                    previous = earlier_period(period, "previous", now)
                    for scope, values in figures.figures_of(
                        [rule.metric], group, previous, now=now
                    ).items():
                        earlier[scope] = values[rule.metric]
    for scope, period in periods.items():
        key = period.first.isoformat() if rule.period == "today" else period.label()
        if not active(rule, plans, period.first):
            continue
        # The calendar may suspend the rule today (a holiday) or make it stricter (11.11).
        behaviour = alert_behaviour(
            organisation.calendar, rule.id, scope, today(now, period.timezone)
        )
        if behaviour.suspended:
            found.append(
                Observation(
                    rule, scope, period, key, False, False,
                    detail={"suspended": ", ".join(behaviour.events)},
                )
            )  # fmt: skip
            continue
        if condition.kind == "stale":
            if scope.kind == "shop" and imports is None:
                last = last_data(figures.engine, scope.id).get(condition.source)  # per shop
            else:
                last = (imports or (lambda: last_imports(figures.engine)))().get(condition.source)
            hours = condition.stale_hours or 0
            silent = None if last is None else (now - last) // 3600
            found.append(
                Observation(
                    rule,
                    scope,
                    period,
                    key,
                    breached=last is not None and now - last > hours * 3600,
                    evaluated=last is not None,
                    value=Decimal(silent) if silent is not None else None,
                    threshold=Decimal(hours),
                    detail={"source": condition.source},
                )
            )
            continue
        figure = computed[scope][rule.metric]
        if rule.settled_only and figure.provisional:
            found.append(Observation(rule, scope, period, key, False, False))
            continue
        if figure.incomplete or (
            condition.kind == "change" and earlier[scope].incomplete
        ):  # an amount could not be converted: the figure is not judged until its rate comes
            missing = sorted({*figure.missing_rates, *earlier.get(scope, figure).missing_rates})
            why = {"incomplete": ", ".join(f"{c} {d.isoformat()}" for c, d in missing)}
            found.append(Observation(rule, scope, period, key, False, False, detail=why))
            continue
        if rule.min_sample is not None:
            sample = computed[scope][rule.min_sample.metric]
            if sample.value is None or sample.value < rule.min_sample.at_least:
                found.append(Observation(rule, scope, period, key, False, False))
                continue
        value = figure.value
        breached, threshold, target = False, None, None
        detail: dict[str, str] = {}
        if behaviour.mode == "stricter":
            detail["stricter"] = ", ".join(behaviour.events)
        if condition.kind == "below_pace":
            progress = plans.progress(figure, now)
            target = progress.target
            if progress.pace is not None and progress.expected is not None:
                allowed = (condition.below_pace_percent or Decimal(0)) * behaviour.factor
                limit = 1 - allowed / 100
                breached = progress.pace < limit
                threshold = progress.expected
                detail |= {"pace": str(progress.pace), "limit": str(limit)}
            else:
                found.append(Observation(rule, scope, period, key, False, False, value))
                continue
        elif condition.kind in ("below", "above"):
            threshold = condition.below if condition.kind == "below" else condition.above
            assert threshold is not None
            if value is not None:
                breached = value < threshold if condition.kind == "below" else value > threshold
        else:  # change against the previous period, to date
            before = earlier[scope]
            threshold = before.value
            percent = (condition.change_percent or Decimal(0)) * behaviour.factor
            if value is not None and before.value:
                change = (value - before.value) / before.value * 100
                breached = change <= percent if percent < 0 else change >= percent
                detail["change"] = str(change.quantize(Decimal("0.1")))
        found.append(
            Observation(
                rule,
                scope,
                period,
                key,
                breached,
                True,
                value,
                threshold,
                target,
                figure.currency,
                figure.provisional,
                detail,
            )
        )
    return found


# -- the store ------------------------------------------------------------------------------


class AlertStore:
    """Alerts in the database: opened, resolved and acted on, with their audit trail."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _event(
        self, conn: Connection, alert_id: int, at: int, actor: str, kind: str, **detail: Any
    ) -> None:
        conn.execute(
            insert(_EVENTS).values(
                alert_id=alert_id,
                at=at,
                actor=actor,
                kind=kind,
                detail=json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
            )
        )

    def get(self, alert_id: int) -> AlertRow | None:
        """One alert, or None."""
        with reading(self.engine) as conn:
            data = conn.execute(select(_ALERTS).where(_ALERTS.c.id == alert_id)).mappings().first()
            detail = self._detail(conn, alert_id)
        return _row(data, detail) if data else None

    def _detail(self, conn: Connection, alert_id: int) -> dict[str, str]:
        first = conn.execute(
            select(_EVENTS.c.detail)
            .where(_EVENTS.c.alert_id == alert_id, _EVENTS.c.kind == "fired")
            .limit(1)
        ).scalar()
        return dict(json.loads(first).get("detail") or {}) if first else {}

    def open_alerts(self, rules: Iterable[str] | None = None) -> list[AlertRow]:
        """Alerts not resolved (of the given rules)."""
        query = select(_ALERTS).where(_ALERTS.c.state.in_(OPEN_STATES))
        if rules is not None:
            query = query.where(_ALERTS.c.rule.in_(list(rules)))
        with reading(self.engine) as conn:
            rows = conn.execute(query.order_by(_ALERTS.c.id)).mappings().all()
            return [_row(r, self._detail(conn, r["id"])) for r in rows]

    def events(self, alert_id: int) -> list[tuple[str, str, str | None]]:
        """(kind, actor, detail) of an alert's audit trail, in order."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(_EVENTS.c.kind, _EVENTS.c.actor, _EVENTS.c.detail)
                .where(_EVENTS.c.alert_id == alert_id)
                .order_by(_EVENTS.c.id)
            ).all()
        return [(k, a, d) for k, a, d in rows]

    def record(self, observation: Observation, now: int) -> tuple[str, AlertRow | None]:
        """Apply an observation: ("opened" | "open" | "resolved" | "clear" | "waiting", alert)."""
        rule, scope_text = observation.rule.id, _scope_text(observation.scope)
        if not observation.evaluated:
            return "waiting", None
        with writing(self.engine) as conn:
            # Alerts of an earlier period end with it.
            for old in conn.execute(
                select(_ALERTS.c.id, _ALERTS.c.version).where(
                    _ALERTS.c.rule == rule,
                    _ALERTS.c.scope == scope_text,
                    _ALERTS.c.period_key != observation.period_key,
                    _ALERTS.c.state.in_(OPEN_STATES),
                )
            ).all():
                self._transition(
                    conn,
                    old.id,
                    old.version,
                    OPEN_STATES,
                    now,
                    "kpibot",
                    "resolved",
                    {"state": "resolved", "resolved_at": now, "resolved_by": "kpibot"},
                    why="the period ended",
                )
            streak = self._streak(conn, rule, scope_text, observation, now)
            current = (
                conn.execute(
                    select(_ALERTS).where(
                        _ALERTS.c.rule == rule,
                        _ALERTS.c.scope == scope_text,
                        _ALERTS.c.period_key == observation.period_key,
                        _ALERTS.c.state.in_(OPEN_STATES),
                    )
                )
                .mappings()
                .first()
            )
        if current is not None:
            if observation.breached:
                return "open", self.get(current["id"])
            done = self._change(
                current["id"],
                current["version"],
                OPEN_STATES,
                now,
                "kpibot",
                "resolved",
                {"state": "resolved", "resolved_at": now, "resolved_by": "kpibot"},
                why="the condition cleared",
            )
            return ("resolved" if done else "open"), self.get(current["id"])
        if not observation.breached or streak < observation.rule.hold:
            return ("waiting" if observation.breached else "clear"), None
        values = {
            "rule": rule,
            "scope": scope_text,
            "period_key": observation.period_key,
            "metric": observation.rule.metric,
            "state": "firing",
            "version": 1,
            "value": _text(observation.value),
            "threshold": _text(observation.threshold),
            "target": _text(observation.target),
            "currency": observation.currency,
            "reason": observation.rule.condition.kind,
            "provisional": observation.provisional,
            "level": 0,
            "notified": 0,
            "opened_at": now,
            "updated_at": now,
            "false_alarm": False,
        }
        try:
            with writing(self.engine) as conn:
                new_id = conn.execute(
                    insert(_ALERTS).values(**values).returning(_ALERTS.c.id)
                ).scalar_one()
                self._event(
                    conn,
                    new_id,
                    now,
                    "kpibot",
                    "fired",
                    value=values["value"],
                    threshold=values["threshold"],
                    detail=dict(observation.detail or {}),
                )
        except IntegrityError:  # another evaluator opened it a moment ago
            return "open", None
        return "opened", self.get(new_id)

    def _streak(
        self, conn: Connection, rule: str, scope: str, observation: Observation, now: int
    ) -> int:
        found = conn.execute(
            select(_STREAKS.c.count, _STREAKS.c.period_key).where(
                _STREAKS.c.rule == rule, _STREAKS.c.scope == scope
            )
        ).first()
        if not observation.breached:
            count = 0
        elif found is not None and found[1] == observation.period_key:
            count = int(found[0]) + 1
        else:
            count = 1
        values = {"count": count, "period_key": observation.period_key, "updated_at": now}
        if found is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(_STREAKS).values(rule=rule, scope=scope, **values))
            except IntegrityError:
                pass
        else:
            conn.execute(
                update(_STREAKS)
                .where(_STREAKS.c.rule == rule, _STREAKS.c.scope == scope)
                .values(**values)
            )
        return count

    def _transition(
        self,
        conn: Connection,
        alert_id: int,
        version: int | None,
        allowed: tuple[str, ...],
        now: int,
        actor: str,
        kind: str,
        values: Mapping[str, Any],
        *,
        bump: bool = True,
        **detail: Any,
    ) -> bool:
        """One conditional change and its event. `bump` False for bookkeeping (a notification
        sent) that leaves the alert as its cards show it: their buttons stay valid."""
        condition = (_ALERTS.c.id == alert_id) & _ALERTS.c.state.in_(allowed)
        if version is not None:
            condition = condition & (_ALERTS.c.version == version)
        changes: dict[str, Any] = {"updated_at": now, **values}
        if bump:
            changes["version"] = _ALERTS.c.version + 1
        result = conn.execute(update(_ALERTS).where(condition).values(**changes))
        if result.rowcount != 1:
            return False
        self._event(conn, alert_id, now, actor, kind, **detail)
        return True

    def _change(
        self,
        alert_id: int,
        version: int | None,
        allowed: tuple[str, ...],
        now: int,
        actor: str,
        kind: str,
        values: Mapping[str, Any],
        *,
        bump: bool = True,
        **detail: Any,
    ) -> bool:
        with writing(self.engine) as conn:
            return self._transition(
                conn, alert_id, version, allowed, now, actor, kind, values, bump=bump, **detail
            )

    def act(
        self,
        alert_id: int,
        action: str,
        actor: str,
        now: int,
        *,
        version: int | None = None,
        until: int | None = None,
        note: str | None = None,
    ) -> Acted:
        """Acknowledge, snooze (until `until`), mark a false alarm, or resolve. With `version`
        (a card's), only if the alert is still as the card showed it."""
        current = self.get(alert_id)
        if current is None:
            return Acted(False, None, "missing")
        if version is not None and version != current.version:
            return Acted(False, current, "stale")
        allowed = ACTIONS[action]
        if current.state not in allowed:
            return Acted(False, current, f"not_allowed_from:{current.state}")
        values: dict[str, Any]
        if action == "ack":
            values = {
                "state": "acknowledged",
                "acked_by": actor,
                "acked_at": now,
                "note": note,
                "snoozed_until": None,
            }
        elif action == "snooze":
            values = {"state": "snoozed", "snoozed_until": until}
        else:
            values = {
                "state": "resolved",
                "resolved_at": now,
                "resolved_by": actor,
                "false_alarm": action == "false_alarm",
            }
        kind = {
            "ack": "acknowledged",
            "snooze": "snoozed",
            "false_alarm": "false_alarm",
            "resolve": "resolved",
        }[action]
        done = self._change(
            alert_id, current.version, allowed, now, actor, kind, values, until=until, note=note
        )
        latest = self.get(alert_id)
        if not done:  # something else changed it in between
            return Acted(False, latest, "stale")
        return Acted(True, latest)

    def wake(self, now: int) -> list[AlertRow]:
        """Snoozed alerts whose time is up are firing again."""
        woken = []
        for alert in self.open_alerts():
            if (
                alert.state == "snoozed"
                and (alert.snoozed_until or 0) <= now
                and self._change(
                    alert.id,
                    alert.version,
                    ("snoozed",),
                    now,
                    "kpibot",
                    "woke",
                    {"state": "firing", "snoozed_until": None, "notified": 0},
                )
            ):
                woken.append(alert)
        return woken

    def escalate(self, alert: AlertRow, now: int, to: str) -> bool:
        """Raise a firing alert one level (to `to`), if nobody acted on it meanwhile."""
        return self._change(
            alert.id,
            alert.version,
            ("firing",),
            now,
            "kpibot",
            "escalated",
            {"level": alert.level + 1},
            to=to,
            level=alert.level + 1,
        )

    def notified(self, alert: AlertRow, now: int, targets: list[str]) -> bool:
        """Count a notification (first one or a repeat)."""
        return self._change(
            alert.id,
            None,
            OPEN_STATES,
            now,
            "kpibot",
            "notified",
            {"notified": alert.notified + 1, "last_notified_at": now},
            bump=False,
            targets=targets,
        )

    def first_notified_at(self, alert_id: int) -> int | None:
        """When the alert was first notified (its owner first told), from its trail."""
        with reading(self.engine) as conn:
            found = conn.execute(
                select(func.min(_EVENTS.c.at)).where(
                    _EVENTS.c.alert_id == alert_id, _EVENTS.c.kind == "notified"
                )
            ).scalar()
        return int(found) if found is not None else None

    def refused(self, alert_id: int, actor: str, action: str, now: int) -> None:
        """Record an attempt by someone not allowed to act: once per person and alert (a
        second attempt adds nothing to the trail)."""
        with writing(self.engine) as conn:
            before = conn.execute(
                select(_EVENTS.c.id).where(
                    _EVENTS.c.alert_id == alert_id,
                    _EVENTS.c.actor == actor,
                    _EVENTS.c.kind == "refused",
                )
            ).first()
            if before is None:
                self._event(conn, alert_id, now, actor, "refused", action=action)

    def false_alarm_rates(self) -> dict[str, tuple[int, int]]:
        """Per rule: (alerts marked not a problem, alerts opened)."""
        with reading(self.engine) as conn:
            rows = conn.execute(select(_ALERTS.c.rule, _ALERTS.c.false_alarm)).all()
        rates: dict[str, tuple[int, int]] = {}
        for rule, false_alarm in rows:
            marked, total = rates.get(rule, (0, 0))
            rates[rule] = (marked + int(bool(false_alarm)), total + 1)
        return rates


def _scope_text(scope: Scope) -> str:
    return "company" if scope.kind == "company" else f"{scope.kind}:{scope.id}"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def snooze_until(now: int, spec: str, timezone: str) -> int | None:
    """The end of a snooze: "1h", "2h", "30m", "2小时", "30分钟", or "tomorrow"/"明天" (08:00 on
    the team's clock tomorrow)."""
    text = spec.strip().lower()
    if text in ("tomorrow", "明天"):
        local = datetime.fromtimestamp(now, zone(timezone))
        morning = (local + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
        return int(morning.timestamp())
    match = re.fullmatch(r"(\d+)\s*(h|hr|hrs|hours?|小时|个小时|m|min|mins|minutes?|分钟)", text)
    if not match:
        return None
    amount, unit = int(match.group(1)), match.group(2)
    minutes = amount if unit.startswith("m") or unit == "分钟" else amount * 60
    return now + minutes * 60 if 0 < minutes <= 7 * 24 * 60 else None
