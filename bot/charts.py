"""Digest charts as PNG: daily GMV against the daily target, and the month-to-date pace.

Labels come from the message catalogue (`chart.*`) in the reader's language. Chinese and
Japanese need a CJK font, which matplotlib's default (DejaVu Sans) lacks, and Japanese kanji
are drawn in Japanese shapes only by a Japanese face: the chart uses the system's Noto Sans
CJK in the reader's region (JP for Japanese, SC otherwise; the `fonts-noto-cjk` package),
else the Noto Sans CJK SC file shipped by the `mplfonts` dependency, which covers kana and
kanji too. `KPIBOT_CHART_FONT` may name a font file to use instead. The first face that has
every character of the labels is used; a label with a character no face has is an error, not
a row of empty boxes.
"""

from __future__ import annotations

import io
import os
import warnings
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from bot.chat.messages import Chart, Language
from bot.i18n import texts

if TYPE_CHECKING:
    # matplotlib is imported where a chart is drawn: commands that draw none start faster.
    from matplotlib.font_manager import FontProperties

    from kpi_engine.digest import DayPoint

FONT_FILE = "NotoSansCJKsc-Regular.otf"
# The installed font families tried for each reader, in order: the reader's own region first
# (kanji differ in shape between Japanese and Chinese), then the others, which cover the same
# characters.
FAMILIES: Mapping[Language, tuple[str, ...]] = {
    "ja": ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC"),
    "zh": ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC"),
    "en": ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC"),
}
LABELS = ("daily", "target", "cumulative", "cumulative_target", "day")


class ChartFontError(RuntimeError):
    """No usable CJK font, or a label needs a glyph the font lacks."""


@dataclass(frozen=True, eq=False)
class ChartFont:
    """A font face charts can be drawn with: its name, file and the characters it has (their
    code points in order: a CJK face has ~65,000, which as a set of ints took ~4 MB a face
    where this array takes 256 kB)."""

    name: str
    properties: FontProperties
    codes: array[int]

    @classmethod
    def of(cls, name: str, properties: FontProperties, charmap: Iterable[int]) -> ChartFont:
        return cls(name, properties, array("I", sorted(charmap)))

    def has(self, code: int) -> bool:
        at = bisect_left(self.codes, code)
        return at < len(self.codes) and self.codes[at] == code

    def missing(self, text: str) -> set[str]:
        """The characters of `text` this face cannot draw."""
        return {c for c in text if not c.isspace() and not self.has(ord(c))}


def font_path() -> Path:
    """The font file charts fall back to when no Noto Sans CJK is installed (or the one
    `KPIBOT_CHART_FONT` names)."""
    configured = os.environ.get("KPIBOT_CHART_FONT")
    if configured:
        return Path(configured)
    spec = find_spec("mplfonts")  # located, not imported: only its font file is wanted
    if spec is None or not spec.submodule_search_locations:
        raise ChartFontError("no CJK font: install mplfonts or set KPIBOT_CHART_FONT")
    return Path(next(iter(spec.submodule_search_locations))) / "fonts" / FONT_FILE


@cache
def _file_font(path: Path) -> ChartFont:
    if not path.is_file():
        raise ChartFontError(f"chart font {path} not found")
    from matplotlib.font_manager import FontProperties, fontManager
    from matplotlib.ft2font import FT2Font

    fontManager.addfont(str(path))
    font = FT2Font(str(path))
    return ChartFont.of(str(font.family_name), FontProperties(fname=str(path)), font.get_charmap())


@cache
def _installed_font(family: str) -> ChartFont | None:
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    properties = FontProperties(family=family)
    try:
        found = findfont(properties, fallback_to_default=False)
    except ValueError:
        return None
    # A collection (.ttc) holds every region's face: the one found is opened, not the first.
    font = FT2Font(str(found), face_index=getattr(found, "face_index", 0))
    if font.family_name != family:
        return None
    return ChartFont.of(family, properties, font.get_charmap())


def chart_fonts(language: Language) -> list[ChartFont]:
    """The faces a chart for a reader of `language` may use, the preferred first."""
    if os.environ.get("KPIBOT_CHART_FONT"):
        return [_file_font(font_path())]
    installed = [f for family in FAMILIES[language] if (f := _installed_font(family))]
    try:
        return [*installed, _file_font(font_path())]
    except ChartFontError:
        if installed:
            return installed
        raise


def chart_font(language: Language, labels: Sequence[str] = ()) -> ChartFont:
    """The first face for `language` that has every character of `labels`."""
    fonts = chart_fonts(language)
    for font in fonts:
        if not any(font.missing(label) for label in labels):
            return font
    lacking = set().union(*(fonts[0].missing(label) for label in labels))
    raise ChartFontError(f"the chart font lacks {''.join(sorted(lacking))!r}")


def missing_glyphs(text: str, language: Language = "zh") -> set[str]:
    """The characters of `text` that the chart font for `language` cannot draw."""
    return chart_fonts(language)[0].missing(text)


def render_month_chart(
    title: str, points: Sequence[DayPoint], currency: str, language: Language
) -> Chart:
    """Daily GMV bars with the daily target line, and cumulative actual against target."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = texts(language)
    labels = {key: t(f"chart.{key}") for key in LABELS}
    font = chart_font(language, [title, currency, *labels.values()])
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
    figure.suptitle(title, fontproperties=font.properties, fontsize=13)
    for axes in (top, bottom):
        axes.legend(prop=font.properties, fontsize=9, loc="upper left")
        axes.set_ylabel(currency, fontproperties=font.properties)
        axes.grid(axis="y", alpha=0.3)
    bottom.set_xlabel(labels["day"], fontproperties=font.properties)
    figure.tight_layout()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph … missing from font(s)" must not pass quietly
        figure.savefig(buffer, format="png")
    return Chart(title, buffer.getvalue(), t("chart.alt", days=len(points)))
