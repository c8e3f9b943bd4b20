"""Import throughput of the large workload's orders, through `kpibot import`, on SQLite and
PostgreSQL, printed beside a raw bulk insert of the same rows measured in the same run.

    .venv/bin/python -m bench.import_bench [--days 7] [--backends sqlite,postgresql] [--chat]

The data comes from `kpibot demo --generate-only --scale large` (DESIGN.md §6: 200 shops,
2,000 people, ~27,400 orders a day). The comparison point reads the same CSV and bulk-inserts
its rows, untouched, into a table of text columns with the same unique key: `executemany` on
SQLite, `COPY … FROM STDIN (FORMAT csv)` of the file on PostgreSQL — the cheapest way to get
those rows into each database, with none of the parsing, validation or revision checks.

With `--chat`, one more import per backend runs while this process records a chat delivery
every 50 ms (as the web process does, through `Inbox.record`): it prints how long recording a
delivery took while the import ran, beside the same with no import running.
"""

from __future__ import annotations

import argparse
import csv
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

PG_ADMIN = os.environ.get("KPIBOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
KPIBOT = str(Path(sys.executable).parent / "kpibot")


def run_kpibot(args: list[str], env: dict[str, str]) -> float:
    """Run `kpibot ARGS`, fail loudly on error, and return the wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run([KPIBOT, *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"kpibot {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    print(f"    {result.stdout.strip().splitlines()[-1]}")
    return elapsed


def raw_sqlite(path: Path, csv_file: Path) -> float:
    """executemany of the CSV's rows, as text, into a table keyed like orders."""
    with csv_file.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        columns = ", ".join(f"{c} TEXT" for c in header)
        connection.execute(f"CREATE TABLE raw_orders (id INTEGER PRIMARY KEY, {columns})")
        connection.execute(
            "CREATE UNIQUE INDEX raw_key ON raw_orders (platform, shop_id, order_id)"
        )
        marks = ", ".join("?" for _ in header)
        insert = f"INSERT INTO raw_orders ({', '.join(header)}) VALUES ({marks})"
        started = time.perf_counter()
        with connection:
            batch: list[list[str]] = []
            for row in reader:
                batch.append(row)
                if len(batch) == 5000:
                    connection.executemany(insert, batch)
                    batch = []
            connection.executemany(insert, batch)
        elapsed = time.perf_counter() - started
        connection.close()
    return elapsed


def raw_postgres(url: str, csv_file: Path) -> float:
    """COPY of the CSV file itself into a table keyed like orders."""
    header = csv_file.open(encoding="utf-8").readline().strip().split(",")
    with psycopg.connect(url) as connection:
        columns = ", ".join(f"{c} TEXT" for c in header)
        connection.execute(f"CREATE TABLE raw_orders (id BIGSERIAL PRIMARY KEY, {columns})")
        connection.execute(
            "CREATE UNIQUE INDEX raw_key ON raw_orders (platform, shop_id, order_id)"
        )
        connection.commit()
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                f"COPY raw_orders ({', '.join(header)}) FROM STDIN (FORMAT csv, HEADER true)"
            ) as copy,
            csv_file.open("rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        connection.commit()
        return time.perf_counter() - started


def delivery_waits(url: str, orders: Path, env: dict[str, str]) -> tuple[list[float], ...]:
    """(waits with no import running, waits while `kpibot import` runs), in seconds."""
    from bot.chat.inbox import Inbox
    from bot.chat.messages import InboundMessage
    from kpi_engine.db import make_engine

    engine = make_engine(url)
    inbox = Inbox(engine)
    number = 0

    def deliver() -> float:
        nonlocal number
        number += 1
        message = InboundMessage("slack", "T1", "C1", "U1", "今天GMV", f"E{number}", 0)
        started = time.perf_counter()
        inbox.record(message, event_id=message.event_id, claim=True)
        return time.perf_counter() - started

    try:
        idle = []
        for _ in range(40):
            idle.append(deliver())
            time.sleep(0.05)
        busy = []
        importer = subprocess.Popen(
            [KPIBOT, "import", "orders", str(orders)], env=env, stdout=subprocess.DEVNULL
        )
        while importer.poll() is None:
            busy.append(deliver())
            time.sleep(0.05)
        if importer.returncode != 0:
            sys.exit("kpibot import failed while deliveries were recorded")
        return idle, busy
    finally:
        engine.dispose()


def pg_database(admin: str) -> tuple[str, str]:
    name = f"kpibot_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def drop_pg(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_url(backend: str, workdir: Path, pg_names: list[str]) -> str:
    if backend == "sqlite":
        for stale in workdir.glob("*.db*"):
            stale.unlink()
        return f"sqlite:///{workdir / 'kpibot.db'}"
    name, plain = pg_database(PG_ADMIN)
    pg_names.append(name)
    return plain.replace("postgresql://", "postgresql+psycopg://", 1)


def measure_chat(backend: str, workdir: Path, orders: Path, env: dict[str, str]) -> None:
    """Print the waits of chat deliveries recorded while an import runs."""
    pg_names: list[str] = []
    try:
        env["KPIBOT_DATABASE_URL"] = url = fresh_url(backend, workdir, pg_names)
        run_kpibot(["db", "upgrade"], env)
        idle, busy = delivery_waits(url, orders, env)
    finally:
        for name in pg_names:
            drop_pg(PG_ADMIN, name)
    for label, waits in (("no import", idle), ("during the import", busy)):
        waits = sorted(waits)
        print(
            f"    recording a delivery, {label}: {len(waits)} deliveries, "
            f"p50 {waits[len(waits) // 2] * 1000:.0f} ms, "
            f"p99 {waits[int(len(waits) * 0.99)] * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms"
        )


def measure(backend: str, workdir: Path, orders: Path, env: dict[str, str]) -> tuple[float, ...]:
    """(import, re-import, raw insert) seconds on a fresh database of `backend`."""
    pg_names: list[str] = []
    try:
        env["KPIBOT_DATABASE_URL"] = fresh_url(backend, workdir, pg_names)
        run_kpibot(["db", "upgrade"], env)
        first = run_kpibot(["import", "orders", str(orders)], env)
        again = run_kpibot(["import", "orders", str(orders)], env)
        if backend == "sqlite":
            raw = raw_sqlite(workdir / "raw.db", orders)
        else:
            raw_name, raw_url = pg_database(PG_ADMIN)
            pg_names.append(raw_name)
            raw = raw_postgres(raw_url, orders)
    finally:
        for name in pg_names:
            drop_pg(PG_ADMIN, name)
    return first, again, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=7, help="days of large-workload orders")
    parser.add_argument("--scale", default="large", help="large, or small for a smoke run")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--data", type=Path, help="reuse data written by a previous run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best counts")
    parser.add_argument(
        "--chat", action="store_true", help="also time chat deliveries recorded during an import"
    )
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="kpibot-bench-"))
    data_dir = options.data or workdir / "data"
    env = {**os.environ}
    if options.data is None:
        print(f"Generating {options.days} days of the large workload in {data_dir} …")
        run_kpibot(
            [
                "demo",
                "--generate-only",
                "--scale",
                options.scale,
                "--days",
                str(options.days),
                "--out",
                str(data_dir),
            ],
            env,
        )
    orders = data_dir / "data" / "orders.csv"
    rows = sum(1 for _ in orders.open(encoding="utf-8")) - 1
    env["KPIBOT_CONFIG_DIR"] = str(data_dir / "config")
    print(f"{rows:,} orders ({orders.stat().st_size / 1e6:.0f} MB)\n")

    results = []
    for backend in options.backends.split(","):
        print(f"{backend}:")
        best = [float("inf")] * 3
        for _ in range(options.repeat):
            best = [
                min(b, t) for b, t in zip(best, measure(backend, workdir, orders, env), strict=True)
            ]
        results.append((backend, *best))
        if options.chat:
            measure_chat(backend, workdir, orders, env)

    print(
        f"\n{'backend':<11}{'kpibot import':>22}{'re-import (idempotent)':>26}"
        f"{'raw bulk insert':>22}{'ratio':>8}"
    )
    for backend, first, again, raw in results:
        print(
            f"{backend:<11}{rows / first:>14,.0f} rows/s{rows / again:>18,.0f} rows/s"
            f"{rows / raw:>14,.0f} rows/s{raw / first:>8.2f}"
        )
    print(
        f"\nBest of {options.repeat} runs, each on a fresh database. ratio = kpibot import rate "
        "÷ raw bulk insert rate.\nkpibot times are wall times of the command: process start-up "
        "and loading the 2,000-person configuration included."
    )


if __name__ == "__main__":
    main()
