"""The numbers of a team's morning stand-up digest (DESIGN.md §1), computed in the team's zone.

Yesterday against its daily targets, month-to-date pace, the people who moved most, and why
the team's GMV moved (traffic × conversion × order value). Rendering and sending belong to
the bot; this module only gathers the figures, reading each rollup once for all the team's
people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from kpi_engine.compare import Delta, Explanation, Ranked, explain_gmv, movers, rank
from kpi_engine.figures import Figure, Figures
from kpi_engine.periods import Period, day_of, today
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans, Progress

# What the digest shows for the team, yesterday and the day before.
TEAM_METRICS = ("gmv", "orders", "aov", "refund_rate", "views")


@dataclass(frozen=True)
class TeamDigest:
    """Everything a team's morning digest says, for the day before `now` in the team's zone."""

    team: str
    day: Period  # yesterday, in the team's zone
    yesterday: dict[str, Progress]  # TEAM_METRICS against their daily targets
    day_before: dict[str, Figure]
    month_to_date: Progress  # GMV against the month's target, with pace and projection
    ranking: list[Ranked]  # the team's people by yesterday's GMV
    risers: list[tuple[str, Delta]]
    fallers: list[tuple[str, Delta]]
    explanation: Explanation | None  # why the team's GMV moved from the day before


def team_digest(figures: Figures, plans: Plans, team_id: str, *, now: int) -> TeamDigest:
    """The digest figures of one team."""
    team = Scope("team", team_id)
    timezone = figures.timezone(team)
    yesterday = day_of(today(now, timezone) - timedelta(days=1), timezone)
    day_before = yesterday.previous()
    month = Period("custom", yesterday.first.replace(day=1), yesterday.last, timezone)
    people = [
        Scope("person", p.id) for p in figures.organisation.people.values() if p.team == team_id
    ]
    now_figures = figures.figures_of(TEAM_METRICS, [team], yesterday, now=now)[team]
    before_figures = figures.figures_of(TEAM_METRICS, [team], day_before, now=now)[team]
    mtd = figures.figures_of(["gmv"], [team], month, now=now)[team]["gmv"]
    after_people = figures.figures_of(["gmv"], people, yesterday, now=now)
    before_people = figures.figures_of(["gmv"], people, day_before, now=now)
    deltas = {
        p.id: Delta(before_people[p]["gmv"].value, after_people[p]["gmv"].value) for p in people
    }
    risers, fallers = movers(deltas)
    return TeamDigest(
        team=team_id,
        day=yesterday,
        yesterday={m: plans.progress(f, now) for m, f in now_figures.items()},
        day_before=before_figures,
        month_to_date=plans.progress(mtd, now),
        ranking=rank({p.id: after_people[p]["gmv"].value for p in people}),
        risers=risers,
        fallers=fallers,
        explanation=explain_gmv(
            {k: before_figures[k].value for k in ("gmv", "orders", "views")},
            {k: now_figures[k].value for k in ("gmv", "orders", "views")},
        ),
    )


def digest_round(figures: Figures, plans: Plans, *, now: int) -> list[TeamDigest]:
    """Every team's digest: the data of a whole organisation's morning round."""
    return [team_digest(figures, plans, team, now=now) for team in figures.organisation.teams]
