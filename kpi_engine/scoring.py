"""Scoring people: their figures, against their targets, through their role's scorecard."""

from __future__ import annotations

from kpi_engine.figures import FigureError, Figures
from kpi_engine.periods import Period
from kpi_engine.scopes import Scope
from kpi_engine.scorecards import Scorecard, score
from kpi_engine.targets import Plans


def scorecard(
    figures: Figures, plans: Plans, person_id: str, period: Period, *, now: int
) -> Scorecard | None:
    """A person's scorecard for a period; None when their role has no scorecard."""
    organisation = figures.organisation
    person = organisation.people.get(person_id)
    if person is None:
        raise FigureError(f"unknown person {person_id!r}")
    rule = next((r for r in organisation.scorecards if r.role == person.role), None)
    if rule is None:
        return None
    results = figures.figures(sorted(rule.metrics), Scope("person", person_id), period, now=now)
    return score(rule, {key: plans.progress(figure, now) for key, figure in results.items()})
