"""Everything a chat user, a digest reader, a card or a page shows, in their language.

Texts live in gettext catalogues, one `.po` file per language under `bot/i18n/locale/<lang>/
LC_MESSAGES/kpibot.po`, keyed by message id (`progress.target_line`) with named placeholders
(`{target}`), edited in the normal Babel workflow (README: "Languages"). They are read with
Babel once per process. `text(language, id, **values)` gives one text; `texts(language)` a
function bound to a language, for the handlers and renderers of one reply.

Words people *type* (metric synonyms, periods, command keywords) are not here: they are in
`bot/i18n/synonyms/<lang>.yaml`, read by the parser.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, get_args

from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from kpi_engine.languages import Language

LANGUAGES: tuple[Language, ...] = get_args(Language)
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "kpibot"
# Babel locale names for formatting numbers, money and dates in each language.
LOCALES: Mapping[Language, str] = {"zh": "zh_Hans_CN", "en": "en_US", "ja": "ja_JP"}

Texts = Callable[..., str]
_lock = threading.Lock()


class MissingText(KeyError):
    """A message id with no text in a language (the catalogue check keeps this from landing)."""


def po_path(language: str, directory: Path = LOCALE_DIR) -> Path:
    """The `.po` file of a language."""
    return directory / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalogue(language: str, directory: Path = LOCALE_DIR) -> Catalog:
    """A language's catalogue as Babel reads it."""
    with po_path(language, directory).open("rb") as handle:
        return read_po(handle, locale=language, domain=DOMAIN)


def compiled_or_source(language: str, directory: Path = LOCALE_DIR) -> Catalog:
    """The compiled catalogue (`.mo`, written by `pybabel compile` when the image is built)
    where it is at least as new as its `.po`, else the `.po` itself (a source checkout)."""
    source = po_path(language, directory)
    compiled = source.with_suffix(".mo")
    if compiled.exists() and compiled.stat().st_mtime >= source.stat().st_mtime:
        with compiled.open("rb") as handle:
            return read_mo(handle)
    return read_catalogue(language, directory)


@cache
def _messages(language: str) -> dict[str, str]:
    with _lock:
        catalogue = compiled_or_source(language)
        return {
            str(message.id): str(message.string)
            for message in catalogue
            if message.id and message.string and not message.fuzzy
        }


def text(language: Language, message_id: str, /, **values: Any) -> str:
    """The text of `message_id` in `language`, its `{placeholders}` filled from `values`."""
    found = _messages(language).get(message_id)
    if found is None:
        raise MissingText(f"{message_id!r} has no {language} text")
    return found.format(**values) if values else found


def texts(language: Language) -> Texts:
    """`text` bound to one language."""

    def bound(message_id: str, /, **values: Any) -> str:
        return text(language, message_id, **values)

    return bound


def has_text(message_id: str) -> bool:
    """True when the message id exists (in the source language, English)."""
    return message_id in _messages("en")
