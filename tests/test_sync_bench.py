"""A tiny run of bench/sync_bench.py completes (timings are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_sync_bench_smoke() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.sync_bench", "--orders", "250"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "sync: 250 orders in 3 pages" in result.stdout
    assert result.stdout.count("ratio") == 4
