"""HTTP API for figures: GET /api/v1/metrics/{metric}?entity=…&period=…"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from bot.api import RuntimeDep, require_api_key
from bot.report import progress_json
from kpi_engine.figures import Figures
from kpi_engine.periods import PeriodError, parse_period
from kpi_engine.scopes import ScopeError
from kpi_engine.targets import Plans

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)])


@router.get("/metrics/{metric}")
def get_metric(
    metric: str,
    runtime: RuntimeDep,
    entity: Annotated[str, Query(description="company, team:<id> or shop:<id>")] = "company",
    period: Annotated[
        str, Query(description="today, this_month, 2026-11, 2026-11-01..2026-11-15…")
    ] = "today",
) -> dict[str, Any]:
    """One metric's figure with its target, pace and projection, provisional and FX marks."""
    organisation = runtime.organisation
    if organisation.catalogue.get(metric) is None:
        raise HTTPException(404, f"unknown metric {metric!r} (see docs/metrics.md)")
    figures = Figures(runtime.engine, organisation)
    try:
        scope = figures.scope_of(entity)
    except ScopeError as exc:
        raise HTTPException(404, str(exc)) from None
    now = int(time.time())
    try:
        chosen = parse_period(
            period,
            now=now,
            timezone=figures.timezone(scope),
            week_start=organisation.settings.week_start,
        )
    except PeriodError as exc:
        raise HTTPException(422, str(exc)) from None
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    return progress_json(plans.progress(figures.figure(metric, scope, chosen, now=now), now))
