"""The example organisation as tests use it: its demo data imported, and copies of its
configuration with a team's or a person's language changed."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import Organisation
from tests.conftest import EXAMPLE_CONFIG


def load_demo(
    engine: Engine, organisation: Organisation, directory: Path, *, days: int, end: date, seed: int
) -> Engine:
    """Generate the example organisation's demo data and import it."""
    data = generate(organisation, EXAMPLE_CONFIG, directory, days=days, end=end, seed=seed)
    for label, path in data.files.items():
        assert import_file(engine, organisation, KINDS[FILE_KINDS.get(label, label)], path).ok
    return engine


SUN_SLACK = "U07SUNYUE01"  # sun.yue (language: ja) given a Slack account in a copied config


def example_config(
    tmp_path: Path,
    *,
    sz_live_language: str,
    li_na_language: str | None = None,
    sun_yue_on_slack: bool = False,
) -> Path:
    """A copy of the example organisation with team sz-live reading `sz_live_language`, li.na
    her own language when given, and sun.yue (who reads Japanese) on Slack when asked."""
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)

    def edit(name: str, old: str, new: str) -> None:
        path = config / name
        content = path.read_text(encoding="utf-8")
        assert content.count(old) == 1, (name, old)
        path.write_text(content.replace(old, new), "utf-8")

    sz_live = "    currency: CNY\n    language: zh\n"
    edit("organisation.yaml", sz_live, f"    currency: CNY\n    language: {sz_live_language}\n")
    if li_na_language is not None:
        li_na = '"lina1024"}\n'
        edit("people.yaml", li_na, f"{li_na}    language: {li_na_language}\n")
    if sun_yue_on_slack:
        sun = 'chat: {feishu: ou_708192a3b4c5d6e7f801122334455667, dingtalk: "sunyue33"}'
        edit("people.yaml", sun, sun[:-1] + f", slack: {SUN_SLACK}}}")
    return config
