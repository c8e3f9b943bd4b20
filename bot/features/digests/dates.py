"""Days and periods as placeholders of the digests' texts, written as each language's text says.

The catalogue, not the code, picks the format: `{day}` is the reader's locale's day in a
sentence (11月20日(金), `bot.i18n.format.day`), `{day:MM-dd}` a CLDR date pattern in the
reader's locale; `{span}` a period as the locale writes a range of days (11月16日～22日),
`{span:MMMEd}` the same with another CLDR skeleton, `{span:iso}` the compact, language-neutral
label (2026-11-20, 2026-W47, 2026-11-01..2026-11-20).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from babel.dates import format_date, format_interval

from bot.i18n import LOCALES
from bot.i18n.format import day
from kpi_engine.languages import Language
from kpi_engine.periods import Period

SPAN_SKELETON = "MMMd"


@dataclass(frozen=True)
class LocalDay:
    """A day, formatted by the text it is placed in."""

    value: date
    language: Language

    def __format__(self, pattern: str) -> str:
        if not pattern:
            return day(self.value, self.language)
        return format_date(self.value, pattern, locale=LOCALES[self.language])


@dataclass(frozen=True)
class LocalSpan:
    """A period's days, formatted by the text it is placed in."""

    period: Period
    language: Language

    def __format__(self, skeleton: str) -> str:
        if skeleton == "iso":
            return self.period.label()
        return format_interval(
            self.period.first,
            self.period.last,
            skeleton or SPAN_SKELETON,
            locale=LOCALES[self.language],
        )
