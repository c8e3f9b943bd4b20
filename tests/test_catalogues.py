"""The message catalogues: every message id has a text in every language, none fuzzy or empty,
with the same placeholders; no text a reader sees is written in the code instead; and locale
formatting of money, percentages and dates."""

from __future__ import annotations

import ast
import os
import re
import shutil
import string
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bot.i18n import (
    DOMAIN,
    LANGUAGES,
    LOCALE_DIR,
    compiled_or_source,
    po_path,
    read_catalogue,
    text,
)
from bot.i18n.format import day, money, percent, points
from tests.conftest import ROOT


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


# Chinese or Japanese words (ideographs, kana): in code, only as words people *type*, which
# the parser reads; every text a reader sees comes from the catalogues.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_TYPED = {
    "bot/chat/parse.py": "the parser's patterns for what people type",
    "bot/console.py": "the console's quit word, typed",
    "bot/features/alerts/service.py": "snooze lengths typed in Japanese ('2時間', '明日')",
    "bot/features/appeals/service.py": "the confirmation words a reviewer types",
    "bot/demo.py": "an example question to type, printed with the commands",
}
# A reply's text, a field's label or a button's label given as a literal, with a word in it.
_SHOWN = ("Reply", "KeyValue", "Button")
_WORD = re.compile(r"[A-Za-z]{3,}")


def _literals(tree: ast.AST) -> list[ast.Constant]:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _shown_literal(call: ast.Call) -> str | None:
    name = getattr(call.func, "id", getattr(call.func, "attr", None))
    if name not in _SHOWN or not call.args:
        return None
    first = call.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        words = first.value
    elif isinstance(first, ast.JoinedStr):
        words = "".join(part.value for part in first.values if isinstance(part, ast.Constant))
    else:
        return None
    return words if _WORD.search(words) else None


def test_no_text_a_reader_sees_is_written_outside_the_catalogues() -> None:
    found = []
    files = sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "adapters").rglob("*.py")])
    assert len(files) > 40
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), name)
        if name not in _TYPED:
            found += [
                f"{name}:{node.lineno} {node.value[:40]!r}"
                for node in _literals(tree)
                if _CJK.search(node.value)
            ]
        found += [
            f"{name}:{node.lineno} {literal[:40]!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and (literal := _shown_literal(node))
        ]
    assert found == [], "texts outside bot/i18n/locale:\n" + "\n".join(found)


def test_the_literal_check_finds_a_chinese_text_and_a_literal_reply() -> None:
    # The check above must be able to fail: the forms it catches, caught.
    tree = ast.parse(
        'def f(zh):\n    """文档。"""\n    label = "目标" if zh else "Target"\n'
        '    return Reply("Nothing to rank.", "en")\n'
    )
    assert [n.value for n in _literals(tree) if _CJK.search(n.value)] == ["目标"]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [_shown_literal(c) for c in calls] == ["Nothing to rank."]


def test_the_catalogues_compile_and_the_compiled_ones_are_read(tmp_path: Path) -> None:
    # As the image is built: `pybabel compile` writes a .mo beside each .po.
    locale = tmp_path / "locale"
    shutil.copytree(LOCALE_DIR, locale, ignore=shutil.ignore_patterns("*.mo"))
    pybabel = Path(sys.executable).parent / "pybabel"
    result = subprocess.run(
        [str(pybabel), "compile", "-d", str(locale), "-D", DOMAIN, "--statistics"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for language in LANGUAGES:
        source = {str(m.id): m.string for m in read_catalogue(language, locale) if m.id}
        read = compiled_or_source(language, locale)
        assert po_path(language, locale).with_suffix(".mo").exists()
        assert {str(m.id): m.string for m in read if m.id} == source
    # The .mo is what is read while it is at least as new as its .po; a .po edited later is
    # read itself, not the stale .mo.
    po = po_path("ja", locale)
    mo = po.with_suffix(".mo")
    po.write_text(
        po.read_text(encoding="utf-8") + '\nmsgid "test.fresh"\nmsgstr "新しい"\n', "utf-8"
    )
    os.utime(po, (mo.stat().st_mtime - 10, mo.stat().st_mtime - 10))
    assert "test.fresh" not in {str(m.id) for m in compiled_or_source("ja", locale)}
    os.utime(po, (mo.stat().st_mtime + 10, mo.stat().st_mtime + 10))
    assert "test.fresh" in {str(m.id) for m in compiled_or_source("ja", locale)}
