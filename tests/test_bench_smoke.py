"""Every benchmark in bench/ runs end to end at a tiny scale, so none can rot: each completes and
prints its comparison point. Nothing here looks at a timing."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, ROOT

KPIBOT = str(Path(sys.executable).parent / "kpibot")


def run_bench(module: str, *args: str, timeout: int = 600) -> str:
    """`python -m bench.MODULE ARGS` from the repository root; its output, after success."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{module} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench-data")
    subprocess.run(
        [KPIBOT, "demo", "--generate-only", "--scale", "small", "--days", "2", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_the_engine_and_chat_benchmarks_run_and_print_their_raw_comparison(
    small_data: Path,
) -> None:
    name = f"kpibot_bench_smoke_{uuid.uuid4().hex[:8]}"
    try:
        engine_out = run_bench(
            "engine_bench", "--data", str(small_data), "--repeat", "1", "--pg-name", name
        )
        for backend in ("sqlite:", "postgresql:"):
            assert backend in engine_out
        assert engine_out.count("raw SQL") >= 2 and '"my GMV today"' in engine_out
        assert "digest round" in engine_out and "ratio" in engine_out
        chat_out = run_bench(
            "chat_bench", "--data", str(small_data), "--count", "8", "--pg-name", name
        )
        assert chat_out.count("echo (ping)") == 2 and "ratio p99" in chat_out
    finally:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_import_benchmark_runs_beside_a_raw_bulk_insert() -> None:
    out = run_bench(
        "import_bench", "--scale", "small", "--days", "1", "--repeat", "1", "--backends",
        "sqlite,postgresql", "--chat",
    )  # fmt: skip
    assert "raw bulk insert" in out and "ratio" in out
    assert out.count("rows/s") >= 6  # import, re-import and raw, on both databases
    assert out.count("recording a delivery, during the import") == 2


def test_the_fanout_benchmark_delivers_a_round_and_prints_the_rate_limit_floor() -> None:
    out = run_bench("fanout_bench", "--scale", "small", "--days", "1", "--mornings", "1")
    assert "rate-limit floor" in out and "ratio:" in out
    assert "lost: 0; duplicated: 0" in out


def test_the_dashboard_benchmark_renders_each_page_beside_the_json_api(small_data: Path) -> None:
    name = f"kpibot_dashboard_smoke_{uuid.uuid4().hex[:8]}"
    try:
        out = run_bench(
            "dashboard_bench", "--data", str(small_data), "--repeat", "1", "--pg-name", name
        )
        for backend in ("sqlite:", "postgresql:"):
            assert backend in out
        assert out.count("JSON API") == 2 and out.count("ratio") == 2
        for page in ("streamer page", "team page", "company page"):
            assert out.count(page) == 2
    finally:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_startup_benchmark_runs_each_command_beside_python_pass() -> None:
    out = run_bench("startup_bench", "--repeat", "1", "--days", "2", "--scale", "small")
    assert "python -c pass" in out and "comparison point" in out
    for label in ("kpibot --help", "kpibot report", "kpibot schedule list"):
        assert label in out
    assert "config load, cold" in out and "config load, cached" in out
    assert out.count("ratio") == 6


def test_the_webhook_benchmark_answers_every_delivery_once_beside_a_bare_endpoint() -> None:
    out = run_bench(
        "webhook_bench",
        *("--count", "4", "--warmup", "2", "--concurrency", "2", "--days", "1"),
        *("--workers", "1", "--platforms", "feishu", "--backends", "postgresql"),
    )
    # PostgreSQL alone: its workspace is built by importing the demo's files, and its workers
    # are woken by NOTIFY; the SQLite path is the demo's own workspace.
    assert "| postgresql | bare endpoint | feishu |" in out
    assert "| postgresql | kpibot serve --workers 1 | feishu |" in out
    assert out.count("6 answered, 0 lost, 0 twice") == 2
    assert "lost 0, twice 0" in out


def test_the_memory_benchmark_soaks_serve_beside_a_bare_endpoint() -> None:
    out = run_bench(
        "memory_bench", "--minutes", "0.1", "--concurrency", "4", "--bare-seconds", "2",
        "--days", "2",
    )  # fmt: skip
    assert "bare FastAPI endpoint (comparison point)" in out and "ratio peak" in out
    assert "Slack + Feishu + DingTalk on" in out and "slope over the second half" in out
    assert re.search(r"HTTP statuses \{200: [\d,]+\}", out)  # every delivery acknowledged
