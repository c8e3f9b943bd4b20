"""Dashboard pages' server time on the large workload, beside the same figures from the JSON API.

    .venv/bin/python -m bench.dashboard_bench --data DIR [--backends sqlite,postgresql] [--reuse]

DIR holds `kpibot demo --generate-only --scale large --days N --out DIR` (200 shops, 2,000
people in 20 teams). Each backend gets a database filled through `kpibot import` (kept with
`--reuse`: SQLite under DIR, PostgreSQL database `kpibot_dashboard_bench`), the app is built
as `kpibot serve` builds it, with its clock pinned an hour before the data's last payment.

Measured in-process through the ASGI app (no network), the median of `--repeat` runs after a
warm-up (rollups current), as wall time and as this process's CPU time. The month shown is the
current one once it has 28 days, else the last whole one (`--month` to choose), so the daily
chart has a month of days:
- a streamer's page (`/dashboard/me`, the month): today and the month against target with
  pace, her rank, the daily chart, the scorecard;
- her manager's team page (`/dashboard/teams/<team>`, the month): the team's figures, the
  ranking of its streamers against the month before, the GMV explanation, shops, channels,
  the daily chart with notes, freshness;
- the admin's company page: 20 teams side by side, 200 shops, freshness, outbox, alerts.
The comparison point is the same figures fetched from the JSON API (`/api/v1/metrics`,
`…/ranking`, `/api/v1/explain/gmv`, `/api/v1/scorecards`), one request per figure as an API
client would, in the same run: the ratio says what rendering a whole page costs beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from bench.engine_bench import database, fill
from bot.app import create_app
from bot.runtime import build_runtime
from bot.web import dashboard_link
from config.settings import Settings
from kpi_engine.clock import fixed_clock
from kpi_engine.instants import zone
from kpi_engine.organisation import load_organisation

PG_NAME = "kpibot_dashboard_bench"
TARGET_MS = 300.0
KEY = "dashboard-bench"


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The median wall time of `call` and the median CPU time this process spent on it (the
    app runs in-process: on a machine shared with other work the CPU time is the steadier
    figure; it leaves out PostgreSQL's server), in milliseconds, after one warm-up."""
    call()
    runs, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        runs.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(runs), statistics.median(cpu)


def print_profile(call: Callable[[], object]) -> None:
    """Profile one request: the route runs in the server's thread pool, so each function
    FastAPI runs there is profiled where it runs."""
    import fastapi.routing

    profiler = cProfile.Profile()
    original = fastapi.routing.run_in_threadpool

    async def profiled(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await original(profiler.runcall, func, *args, **kwargs)

    fastapi.routing.run_in_threadpool = profiled  # type: ignore[assignment]
    try:
        call()
    finally:
        fastapi.routing.run_in_threadpool = original
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def bench(
    backend: str,
    data: Path,
    reuse: bool,
    repeat: int,
    pg_name: str,
    month: str | None,
    profile: str | None = None,
) -> None:
    """Measure the three pages and their API twins on one backend."""
    if backend == "sqlite":
        path = data / "dashboard_bench.db"
        if not reuse:
            for stale in data.glob("dashboard_bench.db*"):
                stale.unlink()
        url, empty = f"sqlite:///{path}", not path.exists()
    else:
        url, empty = database(backend, data, reuse, pg_name)
    if empty:
        print(f"  filling {backend} through kpibot import")
        fill(url, data)
    organisation = load_organisation(data / "config")
    settings = Settings(
        KPIBOT_DATABASE_URL=url,  # type: ignore[call-arg]
        KPIBOT_CONFIG_DIR=data / "config",
        KPIBOT_SCHEDULER=False,
        KPIBOT_SECRET_KEY=KEY,
        KPIBOT_API_KEY=KEY,
    )
    probe = build_runtime(settings, migrate=True)
    with probe.engine.connect() as conn:
        last_paid = int(conn.exec_driver_sql("SELECT max(paid_time) FROM orders").scalar_one())
    probe.engine.dispose()
    now = last_paid - 3600
    runtime = build_runtime(settings, migrate=False, clock=fixed_clock(now))
    team = next(iter(organisation.teams.values()))
    streamer = next(
        p for p in organisation.people.values() if p.team == team.id and p.role == "streamer"
    )
    admin = next(p for p in organisation.people.values() if p.role == "admin")
    local = datetime.fromtimestamp(now, zone(team.timezone)).date()
    # The month measured: the current one once it holds four weeks, else the last whole one,
    # so the daily chart has a month of days (the data ends at a day's end, often the 1st).
    anchor = date.fromisoformat(f"{month}-01") if month else local
    if not month and local.day < 28:
        anchor = local.replace(day=1) - timedelta(days=1)
    first = anchor.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    days = [
        first + timedelta(days=n)
        for n in range((min(following, local + timedelta(days=1)) - first).days)
    ]
    picked = f"p=month&d={first.isoformat()}"
    in_month = f"{first:%Y-%m}"
    api = {"X-API-Key": KEY}

    with TestClient(create_app(runtime=runtime)) as client:

        def session(person: str) -> dict[str, str]:
            token = dashboard_link(runtime, person, now=now).rsplit("/", 1)[1]
            client.cookies.clear()
            answer = client.post("/dashboard/login", data={"token": token}, follow_redirects=False)
            assert answer.status_code == 303, answer.text
            return {"kpibot_session": client.cookies["kpibot_session"]}

        def page(path: str, cookies: dict[str, str]) -> Callable[[], object]:
            def call() -> object:
                client.cookies.clear()
                answer = client.get(path, cookies=cookies)
                assert answer.status_code == 200, (path, answer.status_code)
                return answer

            return call

        def fetch(paths: list[str]) -> Callable[[], object]:
            def call() -> object:
                for path in paths:
                    answer = client.get(path, headers=api)
                    # 404: no scorecard for the role; 422: nothing to explain (as the page says)
                    assert answer.status_code in (200, 404, 422), (path, answer.text[:200])
                return None

            return call

        def metrics(entity: str, names: tuple[str, ...], period: str) -> list[str]:
            return [f"/api/v1/metrics/{m}?entity={entity}&period={period}" for m in names]

        def daily(entity: str, month: list[date]) -> list[str]:
            return [f"/api/v1/metrics/gmv?entity={entity}&period={d.isoformat()}" for d in month]

        person = f"person:{streamer.id}"
        squad = f"team:{team.id}"
        shops = [s.id for s in organisation.shops.values() if s.team == team.id]
        four = ("gmv", "orders", "aov", "refund_rate")
        ranking = f"/api/v1/metrics/gmv/ranking?team={team.id}&role=streamer&period={in_month}"
        me_api = (
            metrics(person, ("gmv",), "today")
            + metrics(person, four, in_month)
            + [ranking, f"/api/v1/scorecards/{streamer.id}?period={in_month}"]
            + daily(person, days)
        )
        team_api = (
            metrics(squad, (*four, "live_gmv", "refund_amount", "views", "ad_spend"), in_month)
            + [ranking, f"/api/v1/explain/gmv?entity={squad}&period={in_month}"]
            + [u for s in shops for u in metrics(f"shop:{s}", ("gmv", "orders"), in_month)]
            + daily(squad, days)
        )
        scopes = ["company", *(f"team:{t}" for t in organisation.teams)]
        company_api = [u for t in scopes for u in metrics(t, four, in_month)] + [
            u
            for s in organisation.shops
            for u in metrics(f"shop:{s}", ("gmv", "orders", "refund_rate"), in_month)
        ]
        size = sum(p.team == team.id for p in organisation.people.values())
        cases = [
            (
                f"streamer page (/dashboard/me, {len(days)} days)",
                page(f"/dashboard/me?{picked}", session(streamer.id)),
                fetch(me_api),
            ),
            (
                f"team page ({size} people, {len(shops)} shops)",
                page(f"/dashboard/teams/{team.id}?{picked}", session(team.manager or admin.id)),
                fetch(team_api),
            ),
            (
                f"company page ({len(organisation.teams)} teams, {len(organisation.shops)} shops)",
                page(f"/dashboard/company?{picked}", session(admin.id)),
                fetch(company_api),
            ),
        ]
        with runtime.engine.connect() as conn:
            orders = conn.exec_driver_sql("SELECT count(*) FROM orders").scalar_one()
        print(
            f"{backend}: {orders:,} orders, {len(organisation.people):,} people; now = {local}; "
            f"month {in_month} ({len(days)} days charted)"
        )
        print(f"  {'':<44}{'page':>10}{'(cpu)':>10}{'JSON API':>12}{'ratio':>8}")
        for label, rendered, fetched in cases:
            if profile and label.startswith(profile):
                print_profile(rendered)
            (page_ms, page_cpu), (api_ms, _) = timed(rendered, repeat), timed(fetched, repeat)
            verdict = "✓" if page_ms <= TARGET_MS else "✗"
            print(
                f"  {label:<44}{page_ms:>7.1f} ms{page_cpu:>7.1f} ms{api_ms:>9.1f} ms"
                f"{page_ms / api_ms:>7.2f}×   target ≤ {TARGET_MS:.0f} ms {verdict}"
            )
    runtime.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--reuse", action="store_true", help="keep and reuse filled databases")
    parser.add_argument("--repeat", type=int, default=5, help="runs per page (median)")
    parser.add_argument("--pg-name", default=PG_NAME, help="the PostgreSQL database to use")
    parser.add_argument(
        "--month", help="YYYY-MM to show (default: this month from its 28th, else the last)"
    )
    parser.add_argument(
        "--profile", help="print a profile of the page whose label starts so (e.g. company)"
    )
    args = parser.parse_args()
    for backend in args.backends.split(","):
        bench(
            backend.strip(),
            args.data,
            args.reuse,
            args.repeat,
            args.pg_name,
            args.month,
            args.profile,
        )


if __name__ == "__main__":
    main()
