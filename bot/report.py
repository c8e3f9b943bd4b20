"""Figures rendered for people (a terminal table) and for programs (JSON-ready dicts)."""

from __future__ import annotations

from typing import Any

from kpi_engine.figures import Figure, format_value
from kpi_engine.instants import to_iso, zone


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


def render_table(figures: list[Figure]) -> str:
    """A plain-text table: metric, value, and provisional / incomplete marks."""
    if not figures:
        return ""
    first = figures[0]
    scope = first.scope.kind if not first.scope.id else f"{first.scope.kind} {first.scope.id}"
    lines = [f"{scope} · {first.period.label()} ({first.period.timezone})"]
    width = max(len(f.metric) for f in figures)
    for figure in figures:
        marks = []
        if figure.provisional:
            marks.append("provisional")
        if figure.unimported:
            marks.append(f"no {', '.join(sorted(figure.unimported))} data imported yet")
        if figure.incomplete:
            missing = ", ".join(f"{c} {d.isoformat()}" for c, d in figure.missing_rates[:3])
            marks.append(f"incomplete: no FX rate for {missing}")
        note = f"  ({'; '.join(marks)})" if marks else ""
        value = format_value(figure.value, figure.unit, figure.currency)
        lines.append(f"  {figure.metric:<{width}}  {value:>22}{note}")
    if first.as_of is not None:
        lines.append(f"  data as of {to_iso(first.as_of, zone(first.period.timezone))}")
    return "\n".join(lines)
