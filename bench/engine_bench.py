"""Engine speed on the large workload (DESIGN.md §6), each figure beside the raw SQL path.

    .venv/bin/python -m bench.engine_bench --data DIR [--backends sqlite,postgresql]
    .venv/bin/python -m bench.engine_bench --data DIR --reuse     # keep the imported databases

DIR holds `kpibot demo --generate-only --scale large --days 365 --out DIR` (200 shops, 2,000
people, ~10M orders). Each backend gets a database filled through `kpibot import` and its
rollups built; `--reuse` keeps and reuses it (SQLite under DIR, PostgreSQL database
`kpibot_engine_bench`).

Measured with rollups (`Figures`) and, as the comparison point in the same run, with the same
figures computed by the raw SQL over the raw tables (`Figures(..., rollups=False)`):
- "my GMV today": GMV, orders and AOV of one streamer for their team's today;
- a team's month-to-date GMV ranking of its 100 people (raw: 5 people, scaled to 100);
- the data of the whole organisation's morning digest round (20 teams, 2,000 people); the
  raw path is measured on one team and scaled by the number of teams (the whole raw round
  takes far too long to run).
Every rollup figure is also checked equal to its raw twin.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, text

from kpi_engine.db import ensure_schema, make_engine
from kpi_engine.digest import digest_round, team_digest
from kpi_engine.figures import Figures
from kpi_engine.instants import zone
from kpi_engine.organisation import load_organisation
from kpi_engine.periods import Period, day_of, today
from kpi_engine.rollups import Rollups
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans

PG_ADMIN = os.environ.get("KPIBOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_NAME = "kpibot_engine_bench"
IMPORT_ORDER = (
    ("fx_rates", "fx_rates.csv"),
    ("live_sessions", "live_sessions.csv"),
    ("orders", "orders.csv"),
    ("orders", "orders_revisions.csv"),
    ("refunds", "refunds.csv"),
    ("ad_spend", "ad_spend.csv"),
    ("metric_values", "metric_values.csv"),
)


def database(backend: str, data: Path, reuse: bool, pg_name: str = PG_NAME) -> tuple[str, bool]:
    """The URL of the backend's bench database, and whether it must be filled."""
    if backend == "sqlite":
        path = data / "engine_bench.db"
        if not reuse:
            for stale in data.glob("engine_bench.db*"):
                stale.unlink()
        return f"sqlite:///{path}", not path.exists()
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (pg_name,)
        ).fetchone()
        if exists and not reuse:
            admin.execute(f'DROP DATABASE "{pg_name}" WITH (FORCE)')
            exists = None
        if not exists:
            admin.execute(f'CREATE DATABASE "{pg_name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{url}/{pg_name}", not exists


def fill(url: str, data: Path) -> None:
    """Import every file through `kpibot import`, as a user would: the CLI's own commands, run
    in this process (a process per file would add the CLI's start-up to each, which the fill
    does not measure)."""
    from typer.testing import CliRunner

    from bot.cli import app

    env = {"KPIBOT_DATABASE_URL": url, "KPIBOT_CONFIG_DIR": str(data / "config")}
    runner = CliRunner()

    def kpibot(*args: str) -> str:
        result = runner.invoke(app, list(args), env=env)
        if result.exit_code != 0:
            sys.exit(f"kpibot {' '.join(args)} failed:\n{result.output}{result.exception or ''}")
        return result.stdout

    kpibot("db", "upgrade")
    for kind, name in IMPORT_ORDER:
        started = time.perf_counter()
        lines = kpibot("import", kind, str(data / "data" / name)).strip().splitlines()
        print(f"    {time.perf_counter() - started:6.1f} s  {lines[0] if lines else name}")


def timed(
    repeat: int, function: Callable[..., Any], *args: Any, **kwargs: Any
) -> tuple[list[float], Any]:
    """Wall times in milliseconds of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def report(label: str, fast: list[float], slow: list[float], target: float) -> None:
    fast_ms, slow_ms = statistics.median(fast), statistics.median(slow)
    verdict = "✓" if fast_ms <= target else "✗"
    print(
        f"  {label:<34}{fast_ms:>10.1f} ms{slow_ms:>14.1f} ms{slow_ms / fast_ms:>9.0f}×"
        f"   target ≤ {target:g} ms {verdict}"
    )


def bench(
    backend: str, data: Path, reuse: bool, repeat: int, fill_only: bool, pg_name: str = PG_NAME
) -> None:
    url, empty = database(backend, data, reuse, pg_name)
    print(f"{backend}:")
    if empty:
        fill(url, data)
    else:
        ensure_schema(url)  # a database kept from an older version of kpibot
    organisation = load_organisation(data / "config")
    engine: Engine = make_engine(url)
    with engine.connect() as conn:
        orders = conn.execute(text("SELECT count(*) FROM orders")).scalar_one()
        last_paid = conn.execute(text("SELECT max(paid_time) FROM orders")).scalar_one()
    # "now": 15:00 on the data's last day in the first team's zone, mid-afternoon live time
    first_team = next(iter(organisation.teams.values()))
    last_day = today(int(last_paid), first_team.timezone)
    afternoon = datetime.combine(last_day, datetime.min.time()).replace(hour=15)
    now = int(afternoon.replace(tzinfo=zone(first_team.timezone)).timestamp())
    started = time.perf_counter()
    Rollups(engine, organisation).ensure_current(now=now)
    built = time.perf_counter() - started
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM rollups")).scalar_one()
    print(
        f"  {orders:,} orders; rollups current ({rows:,} rows; {built:.1f} s to bring up to date)"
    )
    if fill_only:
        return
    fast, slow = Figures(engine, organisation), Figures(engine, organisation, rollups=False)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    print(f"\n  {'':<34}{'rollups':>13}{'raw SQL':>17}{'ratio':>10}")

    # 1. "my GMV today": one streamer at a time
    streamers = [p for p in organisation.people.values() if p.role == "streamer"][::7][:50]
    metrics = ["gmv", "orders", "aov"]

    def today_of(person: Any) -> Period:
        zone_name = organisation.teams[person.team].timezone
        return day_of(today(now, zone_name), zone_name)

    fast_ms: list[float] = []
    slow_ms: list[float] = []
    for n, person in enumerate(streamers):
        scope, period = Scope("person", person.id), today_of(person)
        times, got = timed(repeat, fast.figures, metrics, scope, period, now=now)
        fast_ms.append(statistics.median(times))
        if n < 5:
            times, want = timed(1, slow.figures, metrics, scope, period, now=now)
            slow_ms.extend(times)
            assert got == want, (person.id, got, want)
    report('"my GMV today" (one person)', fast_ms, slow_ms, 20)

    # 2. a team's month-to-date ranking
    teams = list(organisation.teams)[::4]
    fast_ms, slow_ms = [], []
    for n, team_id in enumerate(teams):
        zone_name = organisation.teams[team_id].timezone
        day = today(now, zone_name)
        month = Period("custom", day.replace(day=1), day, zone_name)
        people = [Scope("person", p.id) for p in organisation.people.values() if p.team == team_id]
        times, got = timed(repeat, fast.ranking, "gmv", people, month, now=now)
        fast_ms.append(statistics.median(times))
        if n == 0:  # raw: 5 of the team's people, scaled to all of them
            sample = people[:5]
            times, want = timed(1, slow.figures_of, ["gmv"], sample, month, now=now)
            slow_ms.append(times[0] * len(people) / len(sample))
            ranked = {r.entity: r.value for r in got}
            assert all(ranked[s.id] == want[s]["gmv"].value for s in sample)
    report(f"team MTD ranking (raw ×{len(people) // 5})", fast_ms, slow_ms, 50)

    # 3. the morning digest round: every team's digest data
    digest_now = now + 86400 - 6 * 3600  # 09:00 the next morning
    times, round_ = timed(max(1, repeat // 2), digest_round, fast, plans, now=digest_now)
    team_id = round_[0].team
    one_raw, want = timed(1, team_digest, slow, plans, team_id, now=digest_now)
    assert round_[0] == want
    scaled = [one_raw[0] * len(organisation.teams)]
    report(f"digest round ({len(round_)} teams, raw ×{len(round_)})", times, scaled, 2000)
    print()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="kpibot demo --generate-only --out"
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--reuse", action="store_true", help="keep and reuse filled databases")
    parser.add_argument("--repeat", type=int, default=5, help="runs per rollup figure (median)")
    parser.add_argument(
        "--fill-only", action="store_true", help="fill the databases, measure nothing"
    )
    parser.add_argument("--pg-name", default=PG_NAME, help="the PostgreSQL database to use")
    options = parser.parse_args()
    for backend in options.backends.split(","):
        bench(
            backend, options.data, options.reuse, options.repeat, options.fill_only, options.pg_name
        )
    print(
        "Medians. Rollup figures: every sampled person/team, each the median of --repeat runs; "
        "raw SQL: the first 5 people; 5 people of the first team × 20; one team's digest × "
        "the number of teams."
    )


if __name__ == "__main__":
    main()
