"""The message catalogues: every message id has a text in every language, none fuzzy or empty,
with the same placeholders; and locale formatting of money, percentages and dates."""

from __future__ import annotations

import string
from datetime import date
from decimal import Decimal

import pytest

from bot.i18n import LANGUAGES, read_catalogue, text
from bot.i18n.format import day, money, percent, points


def _placeholders(value: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(value) if name}


def test_every_message_has_every_language_with_the_same_placeholders() -> None:
    catalogues = {language: read_catalogue(language) for language in LANGUAGES}
    ids = {str(m.id) for c in catalogues.values() for m in c if m.id}
    assert ids, "the catalogues are empty"
    problems = []
    for language, catalogue in catalogues.items():
        for message_id in sorted(ids):
            message = catalogue.get(message_id)
            if message is None or not message.string:
                problems.append(f"{language}: {message_id} has no text")
            elif message.fuzzy:
                problems.append(f"{language}: {message_id} is fuzzy")
    for message_id in sorted(ids):
        found = {
            language: _placeholders(str(m.string))
            for language, c in catalogues.items()
            if (m := c.get(message_id)) is not None and m.string
        }
        if len({frozenset(p) for p in found.values()}) > 1:
            problems.append(f"{message_id}: placeholders differ {found}")
    assert problems == []


@pytest.mark.parametrize(
    ("language", "jpy", "cny", "usd"),
    [
        ("zh", "JP¥12,346", "¥1,234.50", "US$1,234.50"),
        ("en", "¥12,346", "CN¥1,234.50", "$1,234.50"),
        ("ja", "￥12,346", "元1,234.50", "$1,234.50"),
    ],
)
def test_money_is_written_as_the_readers_locale_writes_it(
    language: str, jpy: str, cny: str, usd: str
) -> None:
    reader = language  # a Language
    assert money(Decimal("12345.5"), "JPY", reader) == jpy  # type: ignore[arg-type]
    assert money(Decimal("1234.495"), "CNY", reader) == cny  # type: ignore[arg-type]
    assert money(Decimal("1234.5"), "USD", reader) == usd  # type: ignore[arg-type]


def test_large_amounts_percentages_points_and_days() -> None:
    assert money(Decimal("1234567"), "CNY", "zh", compact=True) == "¥123.5万"
    assert money(Decimal("123456789"), "JPY", "ja", compact=True) == "￥1.2億"
    assert money(None, "CNY", "zh") == "—"
    assert percent(Decimal("0.625"), "en") == "63%"  # half-up
    assert points(Decimal("-0.0125"), "zh") == text("zh", "format.points", value="-1.3")
    assert day(date(2026, 11, 20), "ja") == "11月20日(金)"
    assert day(date(2026, 11, 20), "en") == "Fri, Nov 20"
