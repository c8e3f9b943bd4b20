"""Numbers, money, percentages and dates as each language writes them (Babel's locale data).

Money is rounded half-up to its currency's digits first (people round money half-up; Babel's
own rounding is half-even), then written with the locale's symbol and grouping: ¥1,234.50 for
CNY and JP¥12,345 for JPY to a Chinese reader, ￥12,345 and 元1,234.50 to a Japanese one,
CN¥1,234.50 and $1,234.50 to an English one. `compact=True` writes large amounts the way cards
show them: 123.4万 / 1.2亿 (Chinese), 123.4万 / 1.2億 (Japanese), 1.2M (English).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import TYPE_CHECKING

from babel import Locale
from babel.dates import format_skeleton, format_time
from babel.numbers import (
    format_compact_currency,
    format_currency,
    format_decimal,
    get_currency_precision,
)

from bot.i18n import LOCALES, text
from kpi_engine.instants import zone
from kpi_engine.languages import Language

if TYPE_CHECKING:
    from kpi_engine.targets import Progress

DASH = "—"


@cache
def _locale(language: Language) -> Locale:
    """The language's Babel locale, parsed once (parsing it on every number costs more than
    formatting the number)."""
    return Locale.parse(LOCALES[language])


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def money(
    value: Decimal | None, currency: str, language: Language, *, compact: bool = False
) -> str:
    """An amount with its currency, as the reader's locale writes it; "—" for no value."""
    if value is None:
        return DASH
    locale = _locale(language)
    places = get_currency_precision(currency)
    if compact and abs(value) >= 100_000:
        return format_compact_currency(
            _round(value, places), currency, locale=locale, fraction_digits=1
        )
    return format_currency(_round(value, places), currency, locale=locale, currency_digits=True)


def number(value: Decimal | None, language: Language, *, places: int = 0) -> str:
    """A count or plain number, grouped as the locale groups digits."""
    if value is None:
        return DASH
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(_round(value, places), format=pattern, locale=_locale(language))


def percent(ratio: Decimal | None, language: Language, *, places: int = 0) -> str:
    """A ratio as a percentage (1 is 100 %)."""
    if ratio is None:
        return DASH
    return number(ratio * 100, language, places=places) + "%"


def pace(progress: Progress, language: Language) -> str:
    """A figure's pace as a percentage, or "too early" while its period has barely begun."""
    if progress.early:
        return text(language, "format.pace_early")
    return percent(progress.pace, language)


def points(delta: Decimal | None, language: Language) -> str:
    """A change of a rate in percentage points, signed: "+1.2 pp" / "+1.2个百分点"."""
    if delta is None:
        return DASH
    value = _round(delta * 100, 1)
    sign = "+" if value > 0 else ""
    return text(language, "format.points", value=sign + number(value, language, places=1))


def day(value: date, language: Language) -> str:
    """A day as people write it in a sentence: 11月20日 周五 / 11月20日(金) / Fri, Nov 20."""
    return format_skeleton("MMMEd", value, locale=_locale(language))


def moment(at: int, timezone: str, language: Language) -> str:
    """An instant on a clock, to the minute: 11月24日 10:30 / Nov 24, 10:30 / 11月24日 10:30."""
    local = datetime.fromtimestamp(at, zone(timezone))
    locale = _locale(language)
    when = format_skeleton("MMMd", local, locale=locale)
    return f"{when} {format_time(local, 'HH:mm', locale=locale)}"
