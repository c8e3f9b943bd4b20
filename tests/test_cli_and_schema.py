"""The installed `kpibot` command, `kpibot import`, `kpibot db` and migrations matching models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlmodel import SQLModel
from typer.testing import CliRunner

import kpi_engine.models  # noqa: F401  (registers the tables)
from bot.cli import app
from kpi_engine.db import SCHEMA_HEAD
from tests.conftest import EXAMPLE_CONFIG

runner = CliRunner()


def test_help_lists_every_subcommand() -> None:
    kpibot = Path(sys.executable).parent / "kpibot"
    result = subprocess.run([str(kpibot), "--help"], capture_output=True, text=True, check=True)
    for command in (
        "config",
        "db",
        "import",
        "report",
        "scorecard",
        "ask",
        "chat",
        "demo",
        "serve",
    ):
        assert f" {command} " in result.stdout, result.stdout


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_import_command(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG_DIR", str(EXAMPLE_CONFIG))
    good = tmp_path / "fx.csv"
    good.write_text("date,currency,quote,rate\n2026-11-20,USD,CNY,7.12\n", encoding="utf-8")
    bad = tmp_path / "fx-bad.csv"
    bad.write_text("date,currency,quote,rate\n2026-11-20,USD,RMB,7.12\n", encoding="utf-8")

    result = runner.invoke(app, ["import", "fx_rates", str(good)])
    assert result.exit_code == 0, result.output
    assert "fx.csv: 1 fx_rates rows — 1 inserted, 0 revised, 0 unchanged" in result.output
    result = runner.invoke(app, ["import", "fx_rates", str(good), str(bad)])
    assert result.exit_code == 1
    assert "fx.csv: 1 fx_rates rows — 0 inserted, 0 revised, 1 unchanged" in result.output
    assert (
        "fx-bad.csv: line 2, column quote: 'RMB' unknown currency (expected an ISO 4217 code "
        "such as USD)"
    ) in result.output
    result = runner.invoke(app, ["import", "invoices", str(good)])
    assert result.exit_code == 2 and "Unknown kind 'invoices'" in result.output
    result = runner.invoke(app, ["import", "fx_rates", "--json", str(good)])
    assert '"unchanged": 1' in result.output


def test_db_rollups_refreshes_and_checks(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KPIBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG_DIR", str(EXAMPLE_CONFIG))
    orders = Path(__file__).parent.parent / "docs" / "examples" / "orders.csv"
    assert runner.invoke(app, ["import", "orders", str(orders)]).exit_code == 0
    result = runner.invoke(app, ["db", "rollups", "--check"])
    assert result.exit_code == 0, result.output
    assert "Rollups brought up to date" in result.output
    assert "Rollups equal a full recomputation from the raw rows." in result.output
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE rollups SET v0 = v0 + 1 WHERE axis = 'orders.paid_time'"))
    engine.dispose()
    result = runner.invoke(app, ["db", "rollups", "--check"])
    assert result.exit_code == 1 and "Rollups are up to date." in result.output
    assert "rollup rows differ from the raw rows" in result.output


def test_broken_config_stops_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "org.yaml").write_text("teams:\n  - id: t\n", encoding="utf-8")
    monkeypatch.setenv("KPIBOT_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("KPIBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    data = tmp_path / "fx.csv"
    data.write_text("date,currency,quote,rate\n", encoding="utf-8")
    result = runner.invoke(app, ["import", "fx_rates", str(data)])
    assert result.exit_code == 2
    assert "org.yaml:2: error: teams[0].name: missing required key 'name'" in result.output
    assert not (tmp_path / "x.db").exists()


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**os.environ, "KPIBOT_DATABASE_URL": url}
    kpibot = str(Path(sys.executable).parent / "kpibot")
    before = subprocess.run(
        [kpibot, "db", "current"], env=env, capture_output=True, text=True, check=True
    )
    assert "empty" in before.stdout
    after = subprocess.run(
        [kpibot, "db", "upgrade"], env=env, capture_output=True, text=True, check=True
    )
    assert f"Database at revision {SCHEMA_HEAD}" in after.stdout
    from kpi_engine.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders")).scalar_one() == 0
    engine.dispose()


def test_schema_head_constant_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from kpi_engine.db import alembic_config

    assert ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads() == [SCHEMA_HEAD]


def test_ensure_schema_upgrades_only_when_behind(tmp_path: Path) -> None:
    from kpi_engine.db import current_revision, ensure_schema

    url = f"sqlite:///{tmp_path / 'e.db'}"
    assert current_revision(url) is None
    ensure_schema(url)
    assert current_revision(url) == SCHEMA_HEAD
    ensure_schema(url)  # already at head: nothing to do, nothing breaks
    assert current_revision(url) == SCHEMA_HEAD
