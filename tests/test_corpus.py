"""The dialog corpus: what real people type to kpibot (tests/corpus/utterances.yaml), each asked
through the console chat — the pipeline `kpibot ask --json` uses — and checked against what it
must be understood as: intent, metric, subject, period, language and visibility, whether the
bot asked back instead and whether the answer is the refusal.

One test per backend asks the whole corpus and lists every mismatch at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from bot.chat.router import Routed
from bot.cli import _console
from bot.i18n import texts
from kpi_engine.db import make_engine, upgrade
from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import Organisation
from tests.conftest import EXAMPLE_CONFIG, PG_ADMIN_URL, _backends, _pg_admin

if TYPE_CHECKING:
    from bot.console import ConsoleChat

CORPUS = Path(__file__).parent / "corpus" / "utterances.yaml"
END = date(2026, 11, 12)
# 15:00 on Thursday 12 November in Shanghai (23:00 on the 11th in Los Angeles), never the clock.
NOW = "2026-11-12T15:00+08:00"
UNDERSTOOD = ("intent", "metric", "subject", "period", "language", "visibility")
OUTCOMES = ("asked_back", "reason", "refused")
SAID = ("as", "in", "say")
# The examples the issue gives: each is said somewhere in the corpus.
ISSUE_EXAMPLES = (
    "今天gmv多少啊", "GMV 今天", "gvm today", "how am i doing", "zhang wei", "张伟的GMV",
    "2025年11月", "去年11月", "2026-11-01..2026-11-15", "2026-W47", "前天", "明天", "下个月",
    "今年", "q3", "2月30日", "最近-3天", "next week", "上上周", "Nov 20",
    "how far am I from my target", "距离目标还差多少", "我的提成", "who is behind pace",
    "how is zhang wei doing", "上月发货及时率", "库存周转天数", "互动率", "how is marcus doing",
    "how is marcos doing", "LA Operations 本月GMV", "la-ops GMV this month", "shopee today",
    "本周排名", "为什么GMV下降了",
)  # fmt: skip

Entry = dict[str, Any]


def _load() -> dict[str, list[Entry]]:
    """The corpus, checked for misspelt fields and values YAML would read as something else
    (an unquoted 2026-11-12 is a date)."""
    found = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    assert set(found) == {"corpus"}, set(found)
    for section, entries in found.items():
        for entry in entries:
            unknown = set(entry) - {*SAID, *UNDERSTOOD, *OUTCOMES}
            assert not unknown, f"{section}: {entry}: unknown fields {unknown}"
            assert isinstance(entry.get("as"), str) and isinstance(entry.get("say"), str), entry
            assert all(
                value is None or isinstance(value, str | bool) for value in entry.values()
            ), f"{section}: {entry}: quote dates and labels"
    return found  # type: ignore[no-any-return]


ENTRIES = _load()


def _where(entry: Entry) -> str:
    return f"in {entry['in']}" if entry.get("in") else "direct"


def mismatches(entry: Entry, routed: Routed) -> list[str]:
    """How what the bot understood differs from what the entry says it must (empty: not)."""
    found = routed.understood()
    assert found is not None  # every corpus speaker is registered
    reply = routed.result.reply
    unknown = routed.request.unknown if routed.request is not None else None
    actual = {
        **{key: found.get(key) for key in UNDERSTOOD},
        "asked_back": found.get("asked_back"),
        "reason": unknown.reason or None if unknown is not None else None,
        "refused": reply is not None and reply.text == texts(reply.language)("access.refused"),
    }
    # Never asked back and never refused, unless the entry says so.
    wanted = {"asked_back": None, "refused": False}
    wanted |= {key: entry[key] for key in (*UNDERSTOOD, *OUTCOMES) if key in entry}
    return [
        f"{key}: expected {value!r}, got {actual[key]!r}"
        for key, value in wanted.items()
        if actual[key] != value
    ]


@dataclass
class Asker:
    """People talking to the bot on the console, one chat per person and place."""

    organisation: Organisation
    engine: Engine
    chats: dict[tuple[str, str | None], ConsoleChat] = field(default_factory=dict)

    def ask(self, entry: Entry) -> Routed:
        """What the entry's text came to, said by its person where it says."""
        key = (entry["as"], entry.get("in"))
        if key not in self.chats:
            # As `kpibot ask --json` builds it; the replies' text is not what is checked.
            self.chats[key] = _console(*key, self.engine, self.organisation, _ignore, NOW)
        return self.chats[key].say(entry["say"])


def _ignore(_: str) -> None:
    pass


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "corpus_backend" in metafunc.fixturenames:
        metafunc.parametrize(
            "corpus_backend", _backends(metafunc.config), indirect=True, scope="module"
        )


@pytest.fixture(scope="module")
def corpus_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def corpus_db(corpus_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database for the whole corpus on this backend (the corpus only reads, but
    for its notes and appeals, which no other entry looks at)."""
    if corpus_backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('corpus') / 'corpus.db'}"
        upgrade(url)
        yield url
        return
    admin = _pg_admin()
    name = f"kpibot_corpus_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def asker(
    corpus_db: str, organisation: Organisation, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Asker]:
    """The demo data of the chat dialogs (tests/test_chat.py), asked on the console."""
    engine = make_engine(corpus_db)
    data = generate(
        organisation, EXAMPLE_CONFIG, tmp_path_factory.mktemp("data"), days=10, end=END, seed=21
    )
    for label, path in data.files.items():
        assert import_file(engine, organisation, KINDS[FILE_KINDS.get(label, label)], path).ok
    yield Asker(organisation, engine)
    engine.dispose()


def test_the_corpus_is_large_and_holds_every_example_of_the_issue() -> None:
    said = [entry["say"] for entries in ENTRIES.values() for entry in entries]
    assert len(said) >= 220
    assert {"zh", "en", "ja"} <= {e.get("language") for e in ENTRIES["corpus"]}
    missing = [example for example in ISSUE_EXAMPLES if not any(example in s for s in said)]
    assert not missing, missing
    places = [(e["as"], e.get("in"), e["say"]) for es in ENTRIES.values() for e in es]
    assert len(places) == len(set(places)), "an utterance is listed twice"


def test_every_utterance_is_understood_as_meant(asker: Asker) -> None:
    wrong = []
    for entry in ENTRIES["corpus"]:
        problems = mismatches(entry, asker.ask(entry))
        if problems:
            wrong.append(
                f"{entry['as']} ({_where(entry)}) 「{entry['say']}」: " + "; ".join(problems)
            )
    assert not wrong, f"{len(wrong)} of {len(ENTRIES['corpus'])} misunderstood:\n" + "\n".join(
        wrong
    )
