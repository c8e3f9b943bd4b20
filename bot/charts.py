"""Digest charts as PNG: daily GMV against the daily target, and the month-to-date pace.

Chinese labels need a CJK font, which matplotlib's default (DejaVu Sans) lacks: the chart uses
Noto Sans CJK SC, shipped by the `mplfonts` dependency (`KPIBOT_CHART_FONT` may name another
font file). A label with a character the font lacks is an error, not a row of empty boxes.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, fontManager
from matplotlib.ft2font import FT2Font

from bot.chat.messages import Chart, Language
from kpi_engine.digest import DayPoint

FONT_FILE = "NotoSansCJKsc-Regular.otf"


class ChartFontError(RuntimeError):
    """No usable CJK font, or a label needs a glyph the font lacks."""


def font_path() -> Path:
    """The CJK font file charts are drawn with."""
    configured = os.environ.get("KPIBOT_CHART_FONT")
    if configured:
        return Path(configured)
    spec = find_spec("mplfonts")  # located, not imported: only its font file is wanted
    if spec is None or not spec.submodule_search_locations:
        raise ChartFontError("no CJK font: install mplfonts or set KPIBOT_CHART_FONT")
    return Path(next(iter(spec.submodule_search_locations))) / "fonts" / FONT_FILE


@cache
def _font(path: Path) -> tuple[FontProperties, frozenset[int]]:
    if not path.is_file():
        raise ChartFontError(f"chart font {path} not found")
    fontManager.addfont(str(path))
    return FontProperties(fname=str(path)), frozenset(FT2Font(str(path)).get_charmap())


def missing_glyphs(text: str, path: Path | None = None) -> set[str]:
    """The characters of `text` that the chart font cannot draw."""
    _, charmap = _font(path or font_path())
    return {c for c in text if not c.isspace() and ord(c) not in charmap}


def _labels(language: Language) -> dict[str, str]:
    if language == "zh":
        return {
            "daily": "每日 GMV",
            "target": "日目标",
            "cumulative": "本月累计",
            "cumulative_target": "累计目标",
            "day": "日期",
        }
    return {
        "daily": "Daily GMV",
        "target": "Daily target",
        "cumulative": "Month to date",
        "cumulative_target": "Target to date",
        "day": "Day",
    }


def render_month_chart(
    title: str, points: Sequence[DayPoint], currency: str, language: Language
) -> Chart:
    """Daily GMV bars with the daily target line, and cumulative actual against target."""
    labels = _labels(language)
    texts = [title, currency, *labels.values()]
    path = font_path()
    lacking = set().union(*(missing_glyphs(t, path) for t in texts))
    if lacking:
        raise ChartFontError(f"the chart font lacks {''.join(sorted(lacking))!r}")
    font, _ = _font(path)
    days = [p.day.day for p in points]
    actual = [float(p.actual or 0) for p in points]  # drawing only: the figures stay exact
    target = [float(p.target) if p.target is not None else float("nan") for p in points]
    running, running_target = [], []
    total, total_target = Decimal(0), Decimal(0)
    for p in points:
        total += p.actual or 0
        total_target += p.target or 0
        running.append(float(total))
        running_target.append(float(total_target))

    figure = Figure(figsize=(8, 5.2), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    top.bar(days, actual, color="#3370ff", label=labels["daily"])
    top.plot(days, target, color="#f54a45", linewidth=2, label=labels["target"])
    bottom.plot(days, running, color="#3370ff", linewidth=2, label=labels["cumulative"])
    bottom.plot(
        days, running_target, color="#f54a45", linestyle="--", label=labels["cumulative_target"]
    )
    figure.suptitle(title, fontproperties=font, fontsize=13)
    for axes in (top, bottom):
        axes.legend(prop=font, fontsize=9, loc="upper left")
        axes.set_ylabel(currency, fontproperties=font)
        axes.grid(axis="y", alpha=0.3)
    bottom.set_xlabel(labels["day"], fontproperties=font)
    figure.tight_layout()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph … missing from font(s)" must not pass quietly
        figure.savefig(buffer, format="png")
    alt = (
        f"{len(points)} 天每日 GMV 与日目标，及本月累计与累计目标"
        if language == "zh"
        else f"daily GMV against the daily target over {len(points)} days, and month to date"
    )
    return Chart(title, buffer.getvalue(), alt)
