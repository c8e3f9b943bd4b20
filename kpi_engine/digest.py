"""The numbers of a team's morning stand-up digest (DESIGN.md §1), computed in the team's zone.

Yesterday against its daily targets, month-to-date pace, the people who moved most, and why
the team's GMV moved (traffic × conversion × order value). Rendering and sending belong to
the bot; this module only gathers the figures, reading each rollup once for all the team's
people.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from kpi_engine.compare import (
    EXPLAIN_METRICS,
    Delta,
    Explanation,
    Ranked,
    explain_gmv,
    movers,
    rank,
)
from kpi_engine.figures import Figure, Figures
from kpi_engine.instants import day_bounds, zone
from kpi_engine.metrics import Catalogue
from kpi_engine.organisation import Organisation, PersonConfig
from kpi_engine.periods import Period, day_of, earlier_period, month_of, today, week_of
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans, Progress

# What the digest shows for the team, yesterday and the day before.
TEAM_METRICS = ("gmv", "orders", "aov", "refund_rate", "views")


@dataclass(frozen=True)
class DayAndMonth:
    """An imported metric in a digest: yesterday against its daily target, and the month to
    date against the month's."""

    yesterday: Progress
    month: Progress


def imported_keys(catalogue: Catalogue) -> tuple[str, ...]:
    """The metrics declared as imported `metric_values` (first response time, on-time
    dispatch…), in the order the configuration declares them."""
    return tuple(key for key, metric in catalogue.metrics.items() if metric.imported is not None)


def measured_on(organisation: Organisation, person: PersonConfig, metric: str) -> bool:
    """True when `metric` is an item of a scorecard of the person's role (their team's or the
    company's, under any plan)."""
    return any(
        rule.role == person.role
        and rule.team in (None, person.team)
        and any(item.metric == metric for item in rule.items)
        for rule in organisation.scorecards
    )


@dataclass(frozen=True)
class TeamDigest:
    """Everything a team's morning digest says, for the day before `now` in the team's zone."""

    team: str
    day: Period  # yesterday, in the team's zone
    yesterday: dict[str, Progress]  # TEAM_METRICS against their daily targets
    day_before: dict[str, Figure]
    month_to_date: Progress  # GMV against the month's target, with pace and projection
    ranking: list[Ranked]  # the team's people by yesterday's GMV
    people_day: dict[str, Figure]  # each person's GMV yesterday (what the ranking ranks)
    risers: list[tuple[str, Delta]]
    fallers: list[tuple[str, Delta]]
    explanation: Explanation | None  # why the team's GMV moved from the day before
    people_yesterday: dict[str, Progress]  # each person's GMV yesterday against their target
    people_month: dict[str, Progress]  # and month to date
    # Imported metrics (docs/metrics.md, "Imported metrics"): the team's, where it has a value
    # or a target; each person's, where they have a target or a scorecard item on it.
    imported: dict[str, DayAndMonth] = field(default_factory=dict)
    people_imported: dict[str, dict[str, DayAndMonth]] = field(default_factory=dict)


def team_digest(figures: Figures, plans: Plans, team_id: str, *, now: int) -> TeamDigest:
    """The digest figures of one team (from one state of the rollups)."""
    with figures.held():
        return _team_digest(figures, plans, team_id, now=now)


def _team_digest(figures: Figures, plans: Plans, team_id: str, *, now: int) -> TeamDigest:
    team = Scope("team", team_id)
    timezone = figures.timezone(team)
    yesterday = day_of(today(now, timezone) - timedelta(days=1), timezone)
    day_before = yesterday.previous()
    month = Period("custom", yesterday.first.replace(day=1), yesterday.last, timezone)
    people = [
        Scope("person", p.id) for p in figures.organisation.people.values() if p.team == team_id
    ]
    # The explanation's figures come with the digest's own (the same rollup reads).
    shop_traffic = figures.shop_traffic_covers(team, (yesterday, day_before))
    keys = list(dict.fromkeys([*TEAM_METRICS, *EXPLAIN_METRICS]))
    keys += ["shop_visitors"] if shop_traffic else []
    now_all = figures.figures_of(keys, [team], yesterday, now=now)[team]
    before_all = figures.figures_of(keys, [team], day_before, now=now)[team]
    now_figures = {m: now_all[m] for m in TEAM_METRICS}
    before_figures = {m: before_all[m] for m in TEAM_METRICS}
    explanation = explain_gmv(
        {k: f.value for k, f in before_all.items()},
        {k: f.value for k, f in now_all.items()},
        shop_traffic=shop_traffic,
    )
    mtd = figures.figures_of(["gmv"], [team], month, now=now)[team]["gmv"]
    after_people = figures.figures_of(["gmv"], people, yesterday, now=now)
    month_people = figures.figures_of(["gmv"], people, month, now=now)
    before_people = figures.figures_of(["gmv"], people, day_before, now=now)
    deltas = {
        p.id: Delta(before_people[p]["gmv"].value, after_people[p]["gmv"].value) for p in people
    }
    risers, fallers = movers(deltas)
    # Month to date is measured through yesterday, against the whole month's target: the pace
    # is against what was expected by last midnight, the projection is to the month's end.
    whole_month = month_of(yesterday.first, timezone)
    midnight = day_bounds(yesterday.last, zone(timezone))[1]

    def month_progress(figure: Figure) -> Progress:
        progress = plans.progress(replace(figure, period=whole_month), midnight)
        return replace(progress, figure=figure)

    imported, people_imported = _imported(
        figures, plans, team, people, yesterday, month, whole_month, now, month_progress
    )
    return TeamDigest(
        team=team_id,
        day=yesterday,
        yesterday={m: plans.progress(f, now) for m, f in now_figures.items()},
        day_before=before_figures,
        month_to_date=month_progress(mtd),
        ranking=rank({p.id: after_people[p]["gmv"].value for p in people}),
        people_day={p.id: after_people[p]["gmv"] for p in people},
        risers=risers,
        fallers=fallers,
        explanation=None
        if explanation is None
        else replace(explanation, period=yesterday, previous=day_before),
        people_yesterday={p.id: plans.progress(after_people[p]["gmv"], now) for p in people},
        people_month={p.id: month_progress(month_people[p]["gmv"]) for p in people},
        imported=imported,
        people_imported=people_imported,
    )


def _imported(
    figures: Figures,
    plans: Plans,
    team: Scope,
    people: list[Scope],
    yesterday: Period,
    month: Period,
    whole_month: Period,
    now: int,
    month_progress: Callable[[Figure], Progress],
) -> tuple[dict[str, DayAndMonth], dict[str, dict[str, DayAndMonth]]]:
    """The team's and each person's imported metrics, yesterday and month to date."""
    org = figures.organisation
    keys = list(imported_keys(org.catalogue))
    if not keys:
        return {}, {}
    scopes = [team, *people]
    day = figures.figures_of(keys, scopes, yesterday, now=now)
    so_far = figures.figures_of(keys, scopes, month, now=now)

    def both(scope: Scope, key: str) -> DayAndMonth:
        return DayAndMonth(plans.progress(day[scope][key], now), month_progress(so_far[scope][key]))

    shown = {
        key: both(team, key)
        for key in keys
        if day[team][key].value is not None
        or so_far[team][key].value is not None
        or plans.target_of(key, team, whole_month) is not None
    }
    personal: dict[str, dict[str, DayAndMonth]] = {}
    for scope in people:
        person = org.people[scope.id]
        mine = {
            key: both(scope, key)
            for key in keys
            if measured_on(org, person, key) or plans.target_of(key, scope, whole_month) is not None
        }
        if mine:
            personal[scope.id] = mine
    return shown, personal


def digest_round(figures: Figures, plans: Plans, *, now: int) -> list[TeamDigest]:
    """Every team's digest: the data of a whole organisation's morning round."""
    with figures.held():  # one state of the rollups for the whole round
        return [team_digest(figures, plans, team, now=now) for team in figures.organisation.teams]


@dataclass(frozen=True)
class Recap:
    """A team's period in review (the day-end recap, the weekly report): the period against
    its targets, against the period before (day or week) and the month so far against the
    same days of last month, with the best people and shops."""

    team: str
    period: Period
    progress: dict[str, Progress]  # TEAM_METRICS against their targets
    previous: Period  # the same weekday a week before (a day), or the week before (a week)
    before: dict[str, Figure]
    month: Period  # the month to the period's end
    month_before: Period  # the same days of the month before
    month_gmv: Progress
    month_gmv_before: Figure
    top_people: list[Ranked]  # by GMV over the period, best first
    top_shops: list[Ranked]  # by GMV converted to the team's currency, best first
    people_figures: dict[str, Figure]  # the people's GMV the ranking ranks
    shop_figures: dict[str, Figure]  # each shop's GMV in the team's currency
    # The team's imported metrics over the period against their targets, where it has a
    # value or a target (first response time, on-time dispatch).
    imported: dict[str, Progress] = field(default_factory=dict)


def recap(figures: Figures, plans: Plans, team_id: str, period: Period, *, now: int) -> Recap:
    """The recap of `period` (a day or a week) for one team."""
    team = Scope("team", team_id)
    org = figures.organisation
    if period.kind == "day":
        previous = day_of(period.first - timedelta(days=7), period.timezone)
    else:
        previous = period.previous()
    month = Period("custom", period.last.replace(day=1), period.last, period.timezone)
    month_before = earlier_period(month_of(period.last, period.timezone), "previous", now)
    if month.last < month_of(period.last, period.timezone).last:  # the same days, not all
        last = min(month_before.first + (month.last - month.first), month_before.last)
        month_before = Period("custom", month_before.first, last, period.timezone)
    people = [Scope("person", p.id) for p in org.people.values() if p.team == team_id]
    shops = [Scope("shop", s.id) for s in org.shops.values() if s.team == team_id]
    now_figures = figures.figures_of(TEAM_METRICS, [team], period, now=now)[team]
    currency = figures.reporting_currency(team)
    people_gmv = figures.figures_of(["gmv"], people, period, now=now)
    # Shops sell in their own currencies: ranked (and shown) converted to the team's, each
    # order at its own date's rate, never as raw amounts in mixed currencies.
    shop_gmv = figures.figures_of(["gmv"], shops, period, now=now, currency=currency)
    keys = list(imported_keys(org.catalogue))
    found = figures.figures_of(keys, [team], period, now=now)[team] if keys else {}
    imported = {
        key: plans.progress(figure, now)
        for key, figure in found.items()
        if figure.value is not None or plans.target_of(key, team, period) is not None
    }
    return Recap(
        team=team_id,
        period=period,
        progress={m: plans.progress(f, now) for m, f in now_figures.items()},
        previous=previous,
        before=figures.figures_of(TEAM_METRICS, [team], previous, now=now)[team],
        month=month,
        month_before=month_before,
        month_gmv=plans.progress(figures.figure("gmv", team, month, now=now), now),
        month_gmv_before=figures.figure("gmv", team, month_before, now=now),
        top_people=rank({p.id: people_gmv[p]["gmv"].value for p in people}),
        top_shops=rank({s.id: shop_gmv[s]["gmv"].value for s in shops}),
        people_figures={p.id: people_gmv[p]["gmv"] for p in people},
        shop_figures={s.id: shop_gmv[s]["gmv"] for s in shops},
        imported=imported,
    )


def last_week(now: int, timezone: str, week_start: str = "monday") -> Period:
    """The last whole week before `now`'s, in `timezone`."""
    this_week = week_of(today(now, timezone), timezone, week_start)  # type: ignore[arg-type]
    return this_week.previous()


@dataclass(frozen=True)
class DayPoint:
    """One day of the month-to-date chart."""

    day: date
    actual: Decimal | None
    target: Decimal | None


def month_series(
    figures: Figures, plans: Plans, scope: Scope, last: date, *, now: int
) -> list[DayPoint]:
    """Each day's GMV and daily target from the first of `last`'s month to `last`."""
    timezone = figures.timezone(scope)
    month = Period("custom", last.replace(day=1), last, timezone)
    return [
        DayPoint(figure.period.first, figure.value, plans.progress(figure, now).target)
        for figure in figures.series("gmv", scope, month, now=now)
    ]
