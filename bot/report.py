"""Figures rendered for people (a terminal table) and for programs (JSON-ready dicts).

Every number a program receives is quantized to its unit (`kpi_engine.figures.quantize`): money
to its currency's minor unit, ratios to six places, counts to two; rate changes are in
percentage points.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kpi_engine.compare import Delta, Explanation
from kpi_engine.figures import Figure, format_value, quantize
from kpi_engine.instants import to_iso, zone
from kpi_engine.metrics import Catalogue, Unit
from kpi_engine.periods import Period
from kpi_engine.scorecards import Scorecard
from kpi_engine.targets import Progress


def decimal_text(value: Decimal | None) -> str | None:
    """An exact decimal as text (None stays None), as the JSON APIs carry numbers."""
    return None if value is None else str(value)


def unit_text(value: Decimal | None, unit: Unit, currency: str | None) -> str | None:
    """A value quantized to its unit, as text."""
    return decimal_text(quantize(value, unit, currency))


def progress_json(progress: Progress, before: Figure | None = None) -> dict[str, Any]:
    """A figure with its target, achievement, expected-by-now, pace and projection, and how it
    compares with `before` (the same metric over an earlier period)."""
    figure = progress.figure
    unit, currency = figure.unit, figure.currency
    compared = None
    if before is not None:
        delta = Delta(before.value, figure.value)
        change = delta.change
        compared = {
            "period": before.period.label(),
            "value": unit_text(before.value, unit, currency),
            "change": unit_text(change, unit, currency),
            # Rates change in percentage points; other figures also relatively.
            "change_pp": unit_text(None if change is None else change * 100, "decimal", None)
            if unit == "ratio"
            else None,
            "change_ratio": None if unit == "ratio" else unit_text(delta.ratio, "ratio", None),
        }
    return {
        **figure_json(figure),
        "compared_with": compared,
        "target": unit_text(progress.target, unit, currency),
        "achievement": unit_text(progress.achievement, "ratio", None),
        "expected": unit_text(progress.expected, unit, currency),
        "pace": unit_text(progress.pace, "ratio", None),
        # true while too little of the period has passed for a pace (pace and projection null)
        "pace_too_early": progress.early,
        "projection": unit_text(progress.projection, unit, currency),
        "plan": progress.plan,
        "pilot": progress.pilot,
    }


def figure_json(figure: Figure) -> dict[str, Any]:
    """A figure as JSON-ready data; decimals as exact strings quantized to the unit."""
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
        "value": unit_text(figure.value, figure.unit, figure.currency),
        "display": format_value(figure.value, figure.unit, figure.currency),
        "unit": figure.unit,
        "currency": figure.currency,
        "provisional": figure.provisional,
        "as_of": None if figure.as_of is None else to_iso(figure.as_of, zone(period.timezone)),
        "incomplete": figure.incomplete,
        "missing_rates": [{"currency": c, "date": d.isoformat()} for c, d in figure.missing_rates],
        "sources": sorted(figure.sources),
        "unimported": sorted(figure.unimported),
        "shared_credit": figure.shared,
        "corrections": list(figure.corrections),
        "from_raw_rows": figure.from_raw,
    }


def _change(delta: Delta, figure: Figure) -> str:
    """A change as people read it: percentage points for rates, a relative change otherwise."""
    if figure.unit == "ratio":
        change = delta.change
        return "—" if change is None else f"{'+' if change > 0 else ''}{change * 100:.1f} pp"
    ratio = delta.ratio
    return "—" if ratio is None else f"{'+' if ratio > 0 else ''}{ratio * 100:.1f}%"


def marks(figure: Figure, *, pilot: bool = False) -> list[str]:
    """What a reader must know about a figure besides its value (English)."""
    found = []
    if figure.provisional:
        found.append("provisional")
    if figure.unimported:
        found.append(f"no {', '.join(sorted(figure.unimported))} data imported yet")
    if figure.incomplete:
        missing = ", ".join(f"{c} {d.isoformat()}" for c, d in figure.missing_rates[:3])
        found.append(f"incomplete: no FX rate for {missing}")
    if figure.shared:
        found.append("includes orders credited to several people")
    if figure.corrections:
        found.append(f"includes corrections {', '.join(f'#{i}' for i in figure.corrections)}")
    if pilot:
        found.append("pilot plan")
    return found


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
        found = marks(figure, pilot=row.pilot)
        note = f"  ({'; '.join(found)})" if found else ""
        value = format_value(figure.value, figure.unit, figure.currency)
        goal = ""
        if row.target is not None:
            goal = f"  target {format_value(row.target, figure.unit, figure.currency)}"
            if row.achievement is not None:
                goal += f" · {row.achievement * 100:.0f}%"
            if row.pace is not None:
                goal += f" · pace {row.pace * 100:.0f}%"
            elif row.early:
                goal += " · pace: too early to tell"
        earlier = (before or {}).get(figure.metric)
        if earlier is not None:
            change = _change(Delta(earlier.value, figure.value), figure)
            goal += f"  vs {earlier.period.label()} {change}"
        lines.append(f"  {figure.metric:<{width}}  {value:>22}{goal}{note}")
    if first.as_of is not None:
        lines.append(f"  data as of {to_iso(first.as_of, zone(first.period.timezone))}")
    return "\n".join(lines)


def _unit_of(catalogue: Catalogue | None, metric: str | None) -> Unit:
    found = catalogue.get(metric) if catalogue and metric else None
    return found.unit if found else "count"


def explanation_json(
    explanation: Explanation, period: Period, currency: str, catalogue: Catalogue | None = None
) -> dict[str, Any]:
    """A GMV change and its drivers as JSON-ready data."""
    biggest = explanation.biggest
    previous = explanation.previous or period.previous()

    def money(value: Decimal) -> str | None:
        return unit_text(value, "money", currency)

    return {
        "metric": "gmv",
        "period": period.label(),
        "previous": previous.label(),
        "currency": currency,
        "before": money(explanation.before),
        "after": money(explanation.after),
        "change": money(explanation.change),
        "traffic": explanation.traffic,
        "drivers": [
            {
                "name": d.name,
                "metric": d.metric,
                "before": unit_text(d.before, _unit_of(catalogue, d.metric), currency),
                "after": unit_text(d.after, _unit_of(catalogue, d.metric), currency),
                "contribution": money(d.contribution),
            }
            for d in explanation.drivers
        ],
        "unexplained": money(explanation.unexplained),
        "covered_share": unit_text(explanation.covered_share, "ratio", None),
        "biggest_driver": biggest.name if biggest else None,
    }


def render_explanation(
    explanation: Explanation, period: Period, currency: str, catalogue: Catalogue | None = None
) -> str:
    """GMV before and after, and each driver's share of the change."""
    previous = explanation.previous or period.previous()
    lines = [
        f"GMV {period.label()} vs {previous.label()}: "
        f"{format_value(explanation.before, 'money', currency)} → "
        f"{format_value(explanation.after, 'money', currency)} "
        f"({'+' if explanation.change > 0 else ''}"
        f"{format_value(explanation.change, 'money', currency)})"
    ]
    for driver in explanation.drivers:
        unit = _unit_of(catalogue, driver.metric)
        found = catalogue.get(driver.metric) if catalogue and driver.metric else None
        name = f"{driver.name} ({found.name_en})" if found else driver.name
        lines.append(
            f"  {name:<34} {format_value(driver.before, unit, currency):>14} → "
            f"{format_value(driver.after, unit, currency):>14}  "
            f"{format_value(driver.contribution, 'money', currency):>18}"
        )
    if explanation.unexplained:
        lines.append(
            f"  {'other channels (no traffic data)':<34} {'':>14}   {'':>14}  "
            f"{format_value(explanation.unexplained, 'money', currency):>18}"
        )
    share = explanation.covered_share
    if explanation.traffic == "views" and share is not None and share < 1:
        lines.append(
            f"  live views cover {share * 100:.0f}% of the orders; the others' change is not "
            "explained by traffic"
        )
    if explanation.biggest is not None:
        name = explanation.biggest.name
        lines.append(f"  biggest driver: {'other channels' if name == 'other' else name}")
    return "\n".join(lines)


def bonus_withheld(card: Scorecard) -> list[str]:
    """Why a bonus is not payable or uncertain (English): gates with their values, pilot,
    no score, missing FX."""
    found = []
    for result in card.gate_values:
        gate = result.gate
        limit = f"max {gate.max}" if gate.max is not None else f"min {gate.min}"
        found.append(f"{gate.metric} {result.value} outside its limit ({limit})")
    if card.pilot:
        found.append("pilot plan: not payable")
    if card.score is None:
        found.append("no score yet")
    if card.first_tier is not None and not card.bonus:
        found.append(f"score below the first tier ({card.first_tier:g})")
    if card.missing_rates:
        missing = ", ".join(f"{c} {d.isoformat()}" for c, d in card.missing_rates[:3])
        found.append(f"incomplete: no FX rate for {missing}")
    return found


def scorecard_json(card: Scorecard, currency: str) -> dict[str, Any]:
    """A scorecard: every item's weight, value, target, achievement and points; the bonus (in
    the scorecard's currency) and why it is withheld."""
    money = card.currency or currency

    def item_text(value: Decimal | None, figure: Figure | None) -> str | None:
        if figure is None:
            return None
        return unit_text(value, figure.unit, figure.currency)

    return {
        "role": card.role,
        "score": unit_text(card.score, "decimal", None),
        "items": [
            {
                "metric": i.item.metric,
                "weight": str(i.item.weight),
                "value": item_text(i.progress.figure.value, i.progress.figure)
                if i.progress
                else None,
                "target": item_text(i.progress.target, i.progress.figure) if i.progress else None,
                "achievement": unit_text(i.achievement, "ratio", None),
                "points": unit_text(i.points, "decimal", None),
            }
            for i in card.items
        ],
        "bonus": {
            "currency": money,
            "tier": unit_text(card.tier_bonus, "money", money),
            "commission": unit_text(card.commission, "money", money),
            "payable": unit_text(card.bonus, "money", money),
            "failed_gates": [g.metric for g in card.failed_gates],
            "gates": [
                {
                    "metric": r.gate.metric,
                    "value": decimal_text(r.value),
                    "min": decimal_text(r.gate.min),
                    "max": decimal_text(r.gate.max),
                }
                for r in card.gate_values
            ],
            "pilot": card.pilot,
            "withheld": list(card.withheld),
            "reasons": bonus_withheld(card),
        },
        "provisional": card.provisional,
        "config": {
            "version": card.config_version,
            "fingerprint": card.config_fingerprint,
            "kept": card.kept,
        },
        "incomplete": bool(card.missing_rates),
    }


def render_scorecard(card: Scorecard, who: str, period: Period, currency: str) -> str:
    """A scorecard as a small table with the bonus preview underneath."""
    money = card.currency or currency
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
    bonus = f"  bonus preview: {format_value(card.bonus, 'money', money)}"
    withheld = bonus_withheld(card)
    if withheld:
        bonus += f" (no bonus: {'; '.join(withheld)})"
    else:
        bonus += (
            f" = tier {format_value(card.tier_bonus, 'money', money)}"
            f" + commission {format_value(card.commission, 'money', money)}"
        )
    lines.append(bonus)
    if card.config_version is not None:
        kept = " (kept for the closed month)" if card.kept else ""
        fingerprint = (card.config_fingerprint or "")[:12]
        lines.append(f"  configuration v{card.config_version} {fingerprint}{kept}")
    return "\n".join(lines)
