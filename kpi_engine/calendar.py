"""The dated calendar: named events (11.11, Black Friday, Prime Day, 春节, a shop's campaign).

An event covers a day or a range of days — on given dates, or every year on the same month-days
— for the whole company, a team (its people and shops) or one shop. It weighs the days it
covers (a promotion weighs more, a holiday less) when targets are spread over days, and it can
make alert rules stricter or suspend them on those days.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from kpi_engine.scopes import Scope

AlertMode = Literal["normal", "stricter", "suspend"]
EventKind = Literal["promo", "holiday", "campaign"]


@dataclass(frozen=True)
class CalendarEvent:
    """A named event on dates (`first`..`last`) or every year (`yearly`, MM-DD..MM-DD)."""

    name: str
    first: date | None = None
    last: date | None = None
    yearly: tuple[str, str] | None = None  # ("11-11", "11-11"); may wrap the year's end
    scopes: frozenset[Scope] | None = None  # None: the whole company
    label: str = "company"  # the scope as configured: company, team:<id>, shop:<id>
    kind: EventKind = "promo"
    weight: Decimal = Decimal(1)  # multiplies the day's weight
    alerts: AlertMode = "normal"
    rules: tuple[str, ...] | None = None  # the alert rules it affects; None: all
    stricter_factor: Decimal = Decimal("0.5")  # percentage thresholds × this when stricter

    def on(self, day: date) -> bool:
        """True when the event covers `day`."""
        if self.yearly is not None:
            start, end = self.yearly
            key = f"{day:%m-%d}"
            return start <= key <= end if start <= end else key >= start or key <= end
        return self.first is not None and self.last is not None and self.first <= day <= self.last

    def covers(self, scope: Scope | None) -> bool:
        """True when the event applies to `scope` (a company event applies to every scope;
        a team's to the team, its people and its shops; a shop's to the shop)."""
        return self.scopes is None or (scope is not None and scope in self.scopes)


def day_weight(events: Iterable[CalendarEvent], day: date, scope: Scope | None) -> Decimal:
    """The product of the weights of the events covering `day` for `scope` (1 without any)."""
    weight = Decimal(1)
    for event in events:
        if event.on(day) and event.covers(scope):
            weight *= event.weight
    return weight


@dataclass(frozen=True)
class AlertBehaviour:
    """How an alert rule behaves on a day for a scope: normal, stricter or suspended."""

    mode: AlertMode
    factor: Decimal  # percentage thresholds × this (1 unless stricter)
    events: tuple[str, ...]  # the names of the events that decide it

    @property
    def suspended(self) -> bool:
        """True when the rule must not fire."""
        return self.mode == "suspend"


def alert_behaviour(
    events: Iterable[CalendarEvent], rule: str, scope: Scope, day: date
) -> AlertBehaviour:
    """Whether rule `rule` is suspended or stricter on `day` for `scope`: a suspension wins
    over stricter; of several stricter events, the strictest factor."""
    deciding = [
        e
        for e in events
        if e.alerts != "normal"
        and (e.rules is None or rule in e.rules)
        and e.on(day)
        and e.covers(scope)
    ]
    suspending = [e for e in deciding if e.alerts == "suspend"]
    if suspending:
        return AlertBehaviour("suspend", Decimal(1), tuple(e.name for e in suspending))
    if deciding:
        return AlertBehaviour(
            "stricter",
            min(e.stricter_factor for e in deciding),
            tuple(e.name for e in deciding),
        )
    return AlertBehaviour("normal", Decimal(1), ())


def events_on(
    events: Iterable[CalendarEvent], day: date, scope: Scope | None
) -> list[CalendarEvent]:
    """The events covering `day` for `scope`, for showing on a timeline or in a digest."""
    return [e for e in events if e.on(day) and e.covers(scope)]


@dataclass(frozen=True)
class Occurrence:
    """An event's run of days (`first`..`last`) that meets a window, as a digest lists it."""

    event: CalendarEvent
    first: date
    last: date


def events_between(
    events: Iterable[CalendarEvent], first: date, last: date, scopes: Iterable[Scope]
) -> list[Occurrence]:
    """The events covering any day from `first` to `last` for any of `scopes` (a team and its
    shops, say), each with its whole run of days, earliest first."""
    wanted = list(scopes)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    found = []
    for event in events:
        if not any(event.covers(scope) for scope in wanted):
            continue
        covered = [day for day in days if event.on(day)]
        if covered:
            start, end = covered[0], covered[-1]
            # The whole run of days, also where it reaches outside the window (春节 for the
            # week it lasts), at most a year each way.
            for _ in range(366):
                if not event.on(start - timedelta(days=1)):
                    break
                start -= timedelta(days=1)
            for _ in range(366):
                if not event.on(end + timedelta(days=1)):
                    break
                end += timedelta(days=1)
            found.append(Occurrence(event, start, end))
    return sorted(found, key=lambda o: (o.first, o.event.name))
