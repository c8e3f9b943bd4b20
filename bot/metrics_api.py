"""HTTP API for figures: a metric with its target, rankings, and why GMV changed."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from bot.api import CallerDep, RuntimeDep, may_read, require_api_key
from bot.queries import FigureQuery, resolve
from bot.report import explanation_json, progress_json, scorecard_json, unit_text
from bot.runtime import Runtime
from kpi_engine.apikeys import Caller
from kpi_engine.compare import Delta, movers
from kpi_engine.figures import FigureError
from kpi_engine.periods import PeriodError, earlier_period
from kpi_engine.scopes import Scope, ScopeError
from kpi_engine.scoring import scorecard

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)])

EntityQuery = Annotated[str, Query(description="company, team:<id>, shop:<id> or person:<id>")]
PeriodQuery = Annotated[
    str, Query(description="today, this_month, last_7_days, 2026-11, 2026-11-01..2026-11-15…")
]


def _resolve(runtime: Runtime, caller: Caller, entity: str, period: str) -> FigureQuery:
    """The query, if the key may read its scope (403 otherwise)."""
    try:
        query = resolve(
            runtime.engine,
            runtime.organisation,
            entity,
            period,
            now=lambda _zone: int(runtime.clock()),
        )
    except PeriodError as exc:
        raise HTTPException(400, str(exc)) from None
    except ScopeError as exc:
        raise HTTPException(404, str(exc)) from None
    may_read(runtime, caller, query.scope)
    return query


@router.get("/metrics/{metric}")
def get_metric(
    metric: str,
    runtime: RuntimeDep,
    caller: CallerDep,
    entity: EntityQuery = "company",
    period: PeriodQuery = "today",
    compare: Annotated[
        str, Query(description="compare with the previous period, year_ago, or none")
    ] = "previous",
) -> dict[str, Any]:
    """One metric's figure with its target, pace and projection, provisional and FX marks."""
    query = _resolve(runtime, caller, entity, period)
    try:
        earlier = query.earlier(compare)
        figure = query.figures.figure(metric, query.scope, query.period, now=query.now)
        before = (
            query.figures.figure(metric, query.scope, earlier, now=query.now) if earlier else None
        )
    except FigureError as exc:
        raise HTTPException(404, f"{exc} (see docs/metrics.md)") from None
    except PeriodError as exc:
        raise HTTPException(400, str(exc)) from None
    return progress_json(query.plans.progress(figure, query.now), before)


@router.get("/metrics/{metric}/ranking")
def get_ranking(
    metric: str,
    runtime: RuntimeDep,
    caller: CallerDep,
    team: Annotated[str, Query(description="rank this team's people")],
    role: Annotated[str | None, Query(description="only people of this role")] = None,
    period: PeriodQuery = "today",
) -> dict[str, Any]:
    """A team's people ranked by a metric (ties share a place), in the team's time zone."""
    query = _resolve(runtime, caller, f"team:{team}", period)
    people = [
        Scope("person", p.id)
        for p in runtime.organisation.people.values()
        if p.team == team and (role is None or p.role == role)
    ]
    try:
        ranking = query.figures.ranking(metric, people, query.period, now=query.now)
        previous = earlier_period(query.period, "previous", query.now)  # to date, as compared
        earlier = query.figures.ranking(metric, people, previous, now=query.now)
    except FigureError as exc:
        raise HTTPException(404, f"{exc} (see docs/metrics.md)") from None
    before = {r.entity: r.value for r in earlier}
    deltas = {r.entity: Delta(before.get(r.entity), r.value) for r in ranking}
    risers, fallers = movers(deltas)
    found = runtime.organisation.catalogue.get(metric)
    unit = found.unit if found else "decimal"
    currency = query.currency

    def value(number: Decimal | None) -> str | None:
        return unit_text(number, unit, currency)  # rates' changes: in the unit (0.007 = 0.7 pp)

    return {
        "metric": metric,
        "team": team,
        "role": role,
        "period": query.period.label(),
        "timezone": query.period.timezone,
        "currency": query.currency,
        "previous_period": previous.label(),
        "ranking": [
            {
                "person": r.entity,
                "value": value(r.value),
                "rank": r.rank,
                "previous": value(before.get(r.entity)),
                "change": value(deltas[r.entity].change),
            }
            for r in ranking
        ],
        "unit": unit,
        "risers": [{"person": e, "change": value(d.change)} for e, d in risers],
        "fallers": [{"person": e, "change": value(d.change)} for e, d in fallers],
    }


@router.get("/explain/gmv")
def get_explanation(
    runtime: RuntimeDep,
    caller: CallerDep,
    entity: EntityQuery = "company",
    period: PeriodQuery = "yesterday",
) -> dict[str, Any]:
    """How GMV changed against the previous period: traffic × conversion × AOV."""
    query = _resolve(runtime, caller, entity, period)
    explanation = query.figures.explain(query.scope, query.period, now=query.now)
    if explanation is None:
        raise HTTPException(422, "GMV cannot be explained for this entity and period (no data)")
    return explanation_json(explanation, query.period, query.currency, query.figures.catalogue)


@router.get("/scorecards/{person}")
def get_scorecard(
    person: str, runtime: RuntimeDep, caller: CallerDep, period: PeriodQuery = "this_month"
) -> dict[str, Any]:
    """A person's role scorecard for a period, with the bonus preview."""
    query = _resolve(runtime, caller, f"person:{person}", period)
    card = scorecard(query.figures, query.plans, person, query.period, now=query.now)
    if card is None:
        role = runtime.organisation.people[person].role
        raise HTTPException(404, f"no scorecard is configured for the role {role!r}")
    return {
        "person": person,
        "period": query.period.label(),
        **scorecard_json(card, query.currency),
    }
