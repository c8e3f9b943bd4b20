"""The import-format documentation and its example files stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine

from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import Organisation
from tests.conftest import ROOT

DOC = ROOT / "docs" / "import-formats.md"


def test_every_column_is_documented_as_coded() -> None:
    sections = re.split(r"^## ", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    documented = {
        section.split("\n", 1)[0]: re.findall(r"^\| `(\w+)` \| (yes|no) \|", section, re.MULTILINE)
        for section in sections[1:]
    }
    for kind in KINDS.values():
        expected = [(c.name, "yes" if c.required else "no") for c in kind.columns]
        assert documented.get(kind.name) == expected, kind.name


def test_example_files_import_cleanly(engine: Engine, organisation: Organisation) -> None:
    for kind in KINDS.values():
        path = Path(ROOT / "docs" / "examples" / f"{kind.name}.csv")
        report = import_file(engine, organisation, kind, path)
        assert report.ok and report.inserted > 0, report.render()
