"""Start-up of the command line and loading of a 2,000-person configuration (issue 20, item 3).

    .venv/bin/python -m bench.startup_bench [--repeat 5] [--days 90] [--scale large]

Each command runs as a user runs it, a fresh `kpibot` process, on a demo workspace (`kpibot
demo`, SQLite, the clock pinned): `kpibot --help`, `kpibot report` (the GMV overview of the
company today) and `kpibot schedule list`. The comparison point, measured in the same run, is
`python -c pass` of the same interpreter. The report and the schedule run with the workspace's
configuration already in the configuration cache (KPIBOT_CACHE_DIR, as after the first command).

The configuration of the large workload (`kpibot demo --generate-only --scale large`: 2,000
people, 200 shops, 20 teams) is then loaded in this process, its modules already imported:
cold (parsed and checked) and cached (kpi_engine/config_cache.py).

Printed per line: the best wall time and the CPU time of that run (the steadier figure on a
shared machine), the ratio to `python -c pass`, and the target.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

KPIBOT = str(Path(sys.executable).parent / "kpibot")
NOW = "2026-11-24T10:30"


def run_best(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """The best wall time of `repeat` runs of `argv`, and that run's CPU time (user + system)."""
    best: tuple[float, float] | None = None
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if best is None or wall < best[0]:
            best = (wall, cpu)
    assert best is not None
    return best


def time_best(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The best wall time of `repeat` calls, and that call's CPU time, in this process."""
    best: tuple[float, float] | None = None
    for _ in range(repeat):
        cpu_started = time.process_time()
        started = time.perf_counter()
        call()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        if best is None or wall < best[0]:
            best = (wall, cpu)
    assert best is not None
    return best


def line(label: str, figure: tuple[float, float], point: tuple[float, float], target: str) -> str:
    wall, cpu = figure
    return (
        f"{label:<34} {wall:7.3f} s wall  {cpu:7.3f} s CPU  ratio {wall / point[0]:6.1f}×  {target}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (the best counts)")
    parser.add_argument("--days", type=int, default=90, help="days of data in the demo workspace")
    parser.add_argument(
        "--scale", default="large", help="the configuration loaded: large, or small (smoke run)"
    )
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kpibot-startup-") as tmp:
        work = Path(tmp)
        workspace, cache = work / "demo", work / "cache"
        subprocess.run(
            [KPIBOT, "demo", "--dir", str(workspace), "--days", str(options.days), "--no-chat",
             "--now", NOW],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            [KPIBOT, "demo", "--generate-only", "--scale", options.scale, "--days", "1",
             "--out", str(work / "data"), "--now", NOW],
            check=True, capture_output=True,
        )  # fmt: skip
        # As installed: pip compiles the bytecode; PYTHONDONTWRITEBYTECODE (set in the
        # development shell) would otherwise leave compiling our modules to every start.
        inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env = {
            **inherited,
            "KPIBOT_CONFIG_DIR": str(workspace / "config"),
            "KPIBOT_DATABASE_URL": f"sqlite:///{workspace / 'kpibot.db'}",
            "KPIBOT_CACHE_DIR": str(cache),
            "KPIBOT_NOW": NOW,
        }
        subprocess.run([KPIBOT, "report"], env=env, check=True, capture_output=True)  # warm

        repeat = options.repeat
        point = run_best([sys.executable, "-c", "pass"], env, repeat)
        figures = {
            "kpibot --help": (run_best([KPIBOT, "--help"], env, repeat), "target ≤ 0.3 s"),
            "kpibot report": (run_best([KPIBOT, "report"], env, repeat), "target ≤ 1 s"),
            "kpibot schedule list": (
                run_best([KPIBOT, "schedule", "list"], env, repeat),
                "target ≤ 1 s",
            ),
        }

        from kpi_engine.organisation import load_organisation

        config = work / "data" / "config"
        people = len(load_organisation(config).people)
        cold = time_best(lambda: load_organisation(config), repeat)
        load_organisation(config, cache)  # fills the cache
        cached = time_best(lambda: load_organisation(config, cache), repeat)

        print(f"start-up, best of {repeat}; demo workspace of {options.days} days (SQLite)")
        print(line("python -c pass", point, point, "comparison point"))
        for label, (figure, target) in figures.items():
            print(line(label, figure, point, target))
        print(line(f"config load, cold ({people:,} people)", cold, point, "parse and check"))
        print(line(f"config load, cached ({people:,} people)", cached, point, "target ≤ 0.2 s"))
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
