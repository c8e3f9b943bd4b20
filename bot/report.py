"""Figures rendered for people (a terminal table) and for programs (JSON-ready dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kpi_engine.compare import Delta, Explanation
from kpi_engine.figures import Figure, format_value
from kpi_engine.instants import to_iso, zone
from kpi_engine.metrics import Unit
from kpi_engine.periods import Period
from kpi_engine.scorecards import Scorecard
from kpi_engine.targets import Progress


def decimal_text(value: Decimal | None) -> str | None:
    """An exact decimal as text (None stays None), as the JSON APIs carry numbers."""
    return None if value is None else str(value)


def progress_json(progress: Progress, before: Figure | None = None) -> dict[str, Any]:
    """A figure with its target, achievement, expected-by-now, pace and projection, and how it
    compares with `before` (the same metric over an earlier period)."""
    figure = progress.figure
    compared = None
    if before is not None:
        delta = Delta(before.value, figure.value)
        compared = {
            "period": before.period.label(),
            "value": decimal_text(before.value),
            "change": decimal_text(delta.change),
            "change_ratio": decimal_text(delta.ratio),
        }
    return {
        **figure_json(figure),
        "compared_with": compared,
        "target": decimal_text(progress.target),
        "achievement": decimal_text(progress.achievement),
        "expected": decimal_text(progress.expected),
        "pace": decimal_text(progress.pace),
        "projection": decimal_text(progress.projection),
        "plan": progress.plan,
        "pilot": progress.pilot,
    }


def figure_json(figure: Figure) -> dict[str, Any]:
    """A figure as JSON-ready data; decimals as exact strings."""
    period = figure.period
    return {
        "metric": figure.metric,
        "entity": figure.scope.kind
        if not figure.scope.id
        else f"{figure.scope.kind}:{figure.scope.id}",
        "period": {
            "kind": period.kind,
            "first": period.first.isoformat(),
            "last": period.last.isoformat(),
            "timezone": period.timezone,
            "label": period.label(),
        },
        "value": None if figure.value is None else str(figure.value),
        "display": format_value(figure.value, figure.unit, figure.currency),
        "unit": figure.unit,
        "currency": figure.currency,
        "provisional": figure.provisional,
        "as_of": None if figure.as_of is None else to_iso(figure.as_of, zone(period.timezone)),
        "incomplete": figure.incomplete,
        "missing_rates": [{"currency": c, "date": d.isoformat()} for c, d in figure.missing_rates],
        "sources": sorted(figure.sources),
        "unimported": sorted(figure.unimported),
    }


def _change(delta: Delta, figure: Figure) -> str:
    """A change as people read it: percentage points for rates, a relative change otherwise."""
    if figure.unit == "ratio":
        change = delta.change
        return "—" if change is None else f"{'+' if change > 0 else ''}{change * 100:.1f} pp"
    ratio = delta.ratio
    return "—" if ratio is None else f"{'+' if ratio > 0 else ''}{ratio * 100:.1f}%"


def render_table(rows: list[Progress], before: Mapping[str, Figure] | None = None) -> str:
    """A plain-text table: value, target, achievement and pace, with provisional marks."""
    if not rows:
        return ""
    first = rows[0].figure
    scope = first.scope.kind if not first.scope.id else f"{first.scope.kind} {first.scope.id}"
    lines = [f"{scope} · {first.period.label()} ({first.period.timezone})"]
    width = max(len(row.figure.metric) for row in rows)
    for row in rows:
        figure = row.figure
        marks = []
        if figure.provisional:
            marks.append("provisional")
        if figure.unimported:
            marks.append(f"no {', '.join(sorted(figure.unimported))} data imported yet")
        if figure.incomplete:
            missing = ", ".join(f"{c} {d.isoformat()}" for c, d in figure.missing_rates[:3])
            marks.append(f"incomplete: no FX rate for {missing}")
        if row.pilot:
            marks.append("pilot plan")
        note = f"  ({'; '.join(marks)})" if marks else ""
        value = format_value(figure.value, figure.unit, figure.currency)
        goal = ""
        if row.target is not None:
            goal = f"  target {format_value(row.target, figure.unit, figure.currency)}"
            if row.achievement is not None:
                goal += f" · {row.achievement * 100:.0f}%"
            if row.pace is not None:
                goal += f" · pace {row.pace * 100:.0f}%"
        earlier = (before or {}).get(figure.metric)
        if earlier is not None:
            change = _change(Delta(earlier.value, figure.value), figure)
            goal += f"  vs {earlier.period.label()} {change}"
        lines.append(f"  {figure.metric:<{width}}  {value:>22}{goal}{note}")
    if first.as_of is not None:
        lines.append(f"  data as of {to_iso(first.as_of, zone(first.period.timezone))}")
    return "\n".join(lines)


def explanation_json(explanation: Explanation, period: Period, currency: str) -> dict[str, Any]:
    """A GMV change and its drivers as JSON-ready data."""
    biggest = explanation.biggest
    return {
        "metric": "gmv",
        "period": period.label(),
        "previous": period.previous().label(),
        "currency": currency,
        "before": str(explanation.before),
        "after": str(explanation.after),
        "change": str(explanation.change),
        "drivers": [
            {
                "name": d.name,
                "before": str(d.before),
                "after": str(d.after),
                "contribution": str(d.contribution),
            }
            for d in explanation.drivers
        ],
        "biggest_driver": biggest.name if biggest else None,
    }


def render_explanation(explanation: Explanation, period: Period, currency: str) -> str:
    """GMV before and after, and each driver's share of the change."""
    lines = [
        f"GMV {period.label()} vs {period.previous().label()}: "
        f"{format_value(explanation.before, 'money', currency)} → "
        f"{format_value(explanation.after, 'money', currency)} "
        f"({'+' if explanation.change > 0 else ''}"
        f"{format_value(explanation.change, 'money', currency)})"
    ]
    units: dict[str, Unit] = {"aov": "money", "conversion": "ratio"}
    for driver in explanation.drivers:
        unit = units.get(driver.name, "count")
        lines.append(
            f"  {driver.name:<11} {format_value(driver.before, unit, currency):>14} → "
            f"{format_value(driver.after, unit, currency):>14}  "
            f"{format_value(driver.contribution, 'money', currency):>18}"
        )
    if explanation.biggest is not None:
        lines.append(f"  biggest driver: {explanation.biggest.name}")
    return "\n".join(lines)


def scorecard_json(card: Scorecard, currency: str) -> dict[str, Any]:
    """A scorecard: every item's weight, value, target, achievement and points; the bonus."""
    return {
        "role": card.role,
        "score": decimal_text(card.score),
        "items": [
            {
                "metric": i.item.metric,
                "weight": str(i.item.weight),
                "value": decimal_text(i.progress.figure.value) if i.progress else None,
                "target": decimal_text(i.progress.target) if i.progress else None,
                "achievement": decimal_text(i.achievement),
                "points": decimal_text(i.points),
            }
            for i in card.items
        ],
        "bonus": {
            "currency": currency,
            "tier": str(card.tier_bonus),
            "commission": str(card.commission),
            "payable": str(card.bonus),
            "failed_gates": [g.metric for g in card.failed_gates],
            "pilot": card.pilot,
        },
        "provisional": card.provisional,
    }


def render_scorecard(card: Scorecard, who: str, period: Period, currency: str) -> str:
    """A scorecard as a small table with the bonus preview underneath."""
    score = (
        "no score yet (an item has no value or target)"
        if card.score is None
        else (f"{card.score:.1f} / 100")
    )
    lines = [
        f"{who} · {card.role} · {period.label()}: {score}"
        + ("  (provisional)" if card.provisional else "")
    ]
    for item in card.items:
        figure = item.progress.figure if item.progress else None
        value = format_value(figure.value, figure.unit, figure.currency) if figure else "—"
        target = "no target"
        if item.progress is not None and item.progress.target is not None and figure is not None:
            target = "target " + format_value(item.progress.target, figure.unit, figure.currency)
        points = "—" if item.points is None else f"{item.points:.1f}"
        lines.append(
            f"  {item.item.metric:<20} {item.item.weight:>4}%  {value:>18}  {target:<24}"
            f"  {points:>6} pts"
        )
    bonus = f"  bonus preview: {format_value(card.bonus, 'money', currency)}"
    if card.failed_gates:
        bonus += f" (no bonus: {', '.join(g.metric for g in card.failed_gates)} outside its limit)"
    elif card.pilot:
        bonus += " (pilot plan: not payable)"
    else:
        bonus += (
            f" = tier {format_value(card.tier_bonus, 'money', currency)}"
            f" + commission {format_value(card.commission, 'money', currency)}"
        )
    lines.append(bonus)
    return "\n".join(lines)
