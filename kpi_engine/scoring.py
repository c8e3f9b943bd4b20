"""Scoring people: their figures, against their targets, through their role's scorecard.

A period whose month has ended is scored with the configuration kept for that month
(`kpi_engine.history`), so editing a target or a scorecard later does not rewrite it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from kpi_engine.figures import FigureError, Figures
from kpi_engine.history import ConfigHistory, KpiConfig, Rescore, history_of
from kpi_engine.money import minor_exponent
from kpi_engine.periods import Period, month_of
from kpi_engine.scopes import Scope
from kpi_engine.scorecards import Scorecard, score, scorecard_for
from kpi_engine.targets import Plans


def scorecard(
    figures: Figures,
    plans: Plans,
    person_id: str,
    period: Period,
    *,
    now: int,
    history: ConfigHistory | None = None,
) -> Scorecard | None:
    """A person's scorecard for a period; None when their role has no scorecard.

    `plans` judges a period still under way; a closed month's kept configuration replaces it.
    Items are scored in the person's reporting currency (their targets' own); the bonus is in
    the scorecard's currency (or their team's override), and the commission and money gates are
    computed in it — each amount at its own date's rate — when it differs.
    """
    organisation = figures.organisation
    person = organisation.people.get(person_id)
    if person is None:
        raise FigureError(f"unknown person {person_id!r}")
    used = (history or history_of(figures.engine, organisation, now=now)).in_force(period, now)
    card = _scorecard(
        figures, used.config, plans if not used.closed else used.plans, person_id, period, now
    )
    if card is None:
        return None
    return replace(
        card,
        config_version=used.version.id,
        config_fingerprint=used.version.fingerprint,
        kept=used.closed,
    )


def _scorecard(
    figures: Figures, config: KpiConfig, plans: Plans, person_id: str, period: Period, now: int
) -> Scorecard | None:
    organisation = figures.organisation
    person = organisation.people[person_id]
    plan = plans.plan_on(period.last)  # the plan in force at the period's end decides
    found = scorecard_for(config.scorecards, person.role, person.team, plan.id if plan else None)
    if found is None:
        return None
    rule = found.for_team(person.team)
    scope = Scope("person", person_id)
    reporting = figures.reporting_currency(scope)
    currency = rule.currency or reporting
    results = figures.figures(sorted(rule.metrics), scope, period, now=now)
    bonus_figures = {}
    if currency != reporting:
        money = [
            m
            for m in {g.metric for g in rule.gates}
            | ({rule.commission.metric} if rule.commission else set())
            if (metric := organisation.catalogue.get(m)) is not None and metric.unit == "money"
        ]
        if money:
            bonus_figures = figures.figures(
                sorted(money), scope, period, now=now, currency=currency
            )
    progress = {key: plans.progress(figure, now) for key, figure in results.items()}
    return score(rule, progress, bonus_figures, currency)


def rescore(
    figures: Figures, month: str, actor: str, reason: str, *, now: int, apply: bool = True
) -> Rescore:
    """Judge a closed month by the current configuration from now on: every scored person's
    score and bonus before and after go into the audit trail with the versions and the targets
    that change. Refused while the month has not ended for every team."""
    organisation = figures.organisation
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ValueError(f"a re-score takes a month such as 2026-11, not {month!r}") from None
    zones = {team.timezone for team in organisation.teams.values()} or {"UTC"}
    if any(now < month_of(first, zone).bounds()[1] for zone in zones):
        raise ValueError(f"{month} has not ended: it is judged by the current configuration")
    history = history_of(figures.engine, organisation, now=now)
    kept = history.kept(month)
    scores: dict[str, tuple[Any, Any]] = {}
    for person_id in organisation.people:
        period = month_of(first, figures.timezone(Scope("person", person_id)))
        before = (
            None if kept is None else _scorecard(figures, kept[1], kept[2], person_id, period, now)
        )
        after = _scorecard(
            figures, history.current_config, history.current_plans, person_id, period, now
        )
        if before is not None or after is not None:
            currency = organisation.currency_of(Scope("person", person_id))
            scores[person_id] = (_summary(before, currency), _summary(after, currency))
    return history.rescore(month, actor, reason, now, apply=apply, scores=scores)


def _summary(card: Scorecard | None, currency: str) -> dict[str, str | None] | None:
    """A score to the hundredth and a bonus to its currency's minor unit (half up), as text."""
    if card is None:
        return None
    cent = Decimal(1).scaleb(-minor_exponent(currency))
    return {
        "score": None
        if card.score is None
        else str(card.score.quantize(Decimal("0.01"), ROUND_HALF_UP)),
        "bonus": str(card.bonus.quantize(cent, ROUND_HALF_UP)),
        "currency": currency,
    }
