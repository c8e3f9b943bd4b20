"""Start-up: `kpibot --help` imports no storage, web, chart or chat SDK module; a report and the
schedule import no chart or chat SDK; every command's --help still resolves its options.
What is imported is asserted, never how long it takes (bench/startup_bench.py measures that)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer.main
from typer.testing import CliRunner

from bot.cli import IMPORT_KINDS, app
from kpi_engine.ingest.formats import KINDS
from tests.conftest import EXAMPLE_CONFIG, ROOT

# Runs the kpibot command in this interpreter, then prints the modules it imported as JSON.
PROBE = """
import json, sys
sys.argv = ["kpibot", *sys.argv[1:]]
from bot.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

HEAVY = ("sqlalchemy", "sqlmodel", "kpi_engine.models", "lark_oapi", "slack_bolt", "matplotlib")
NEVER_FOR_A_REPORT = (
    "matplotlib", "lark_oapi", "slack_bolt", "slack_sdk", "dingtalk_stream", "fastapi", "uvicorn",
)  # fmt: skip


def probe(*args: str, env: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    """Run `kpibot ARGS` in a fresh interpreter: its output, exit code and imported modules."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    found: dict[str, Any] = json.loads(result.stderr.strip().splitlines()[-1])
    return result.stdout, found


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """The modules of `names` (or inside them) that were imported."""
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def test_help_imports_no_storage_chart_or_chat_sdk() -> None:
    out, found = probe("--help")
    assert found["code"] == 0 and "report" in out and "schedule" in out
    assert loaded(found["modules"], HEAVY) == []
    # Nor the settings, the organisation or the web server.
    assert loaded(found["modules"], ("pydantic", "kpi_engine.organisation", "fastapi")) == []
    assert "typer" in found["modules"]  # the probe did run the command line


def test_the_probe_sees_an_import_when_there_is_one() -> None:
    # A command that needs the configuration imports the organisation (the check can fail).
    _out, found = probe("config", "check", str(EXAMPLE_CONFIG))
    assert found["code"] == 0
    assert "kpi_engine.organisation" in found["modules"] and "pydantic" in found["modules"]


def test_report_and_schedule_import_no_chart_or_chat_sdk(tmp_path: Path) -> None:
    env = {
        "KPIBOT_CONFIG_DIR": str(EXAMPLE_CONFIG),
        "KPIBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'kpibot.db'}",
        "KPIBOT_CACHE_DIR": str(tmp_path / "cache"),
        "KPIBOT_NOW": "2026-11-24T10:30",
    }
    out, found = probe("report", env=env)
    assert found["code"] == 0 and "gmv" in out
    assert loaded(found["modules"], NEVER_FOR_A_REPORT) == []
    out, found = probe("schedule", "list", env=env)
    assert found["code"] == 0 and "morning:sz-live" in out
    assert loaded(found["modules"], NEVER_FOR_A_REPORT) == []


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_every_command_has_a_working_help() -> None:
    paths = _command_paths()
    for expected in (["report"], ["schedule", "list"], ["import"], ["sync", "run"], ["connect"]):
        assert expected in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, f"kpibot {' '.join(path)} --help:\n{result.output}"
        assert "Usage" in result.output


def test_the_import_help_names_every_kind() -> None:
    assert tuple(KINDS) == IMPORT_KINDS
