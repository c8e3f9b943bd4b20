"""Shop sync throughput against a fake TikTok Shop at its documented limit (50 QPS per API
and shop), as a ratio to the floor that limit allows; and each export file's import against
the plain CSV import of the same orders. Run: python -m bench.sync_bench [--orders N]."""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

from connectors.clock import SystemClock
from connectors.sync import SyncService
from connectors.tiktok import TikTokConnector
from connectors.tokens import ConnectionStore, TokenCipher
from kpi_engine.db import make_engine, upgrade
from kpi_engine.ingest.exports import read_export
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file, import_rows
from kpi_engine.organisation import load_organisation
from tests import faketiktok
from tests.faketiktok import FakeTikTok
from tests.shopsync import SECRET, shop_config

QPS = 50.0


def sync_ratio(orders: int, work: Path) -> str:
    """Seconds to sync `orders` orders against the floor pages / QPS."""
    url = f"sqlite:///{work / 'sync.db'}"
    upgrade(url)
    engine = make_engine(url)
    organisation = load_organisation(shop_config(work / "sync"))
    clock = SystemClock()
    now = int(clock.now())
    with FakeTikTok() as fake:
        for n in range(orders):
            fake.add_order(f"5770{n:07d}", created=now - 10 * 86400 + n)
        tiktok = TikTokConnector(
            faketiktok.APP_KEY,
            faketiktok.APP_SECRET,
            clock,
            api_url=fake.url,
            auth_url=fake.url,
            qps=QPS,
        )
        # A bucket of one: no burst, so the floor is exactly pages / QPS.
        tiktok.buckets.burst = 1.0
        store = ConnectionStore(engine, TokenCipher(SECRET))
        sync = SyncService(engine, organisation, {"tiktok": tiktok}, store, clock)
        sync.complete("tiktok", "tts-us-01", "auth-code-1", {}, "")
        started = time.perf_counter()
        outcome = sync.sync("tts-us-01", "orders", now)
        elapsed = time.perf_counter() - started
    pages = outcome.pages
    floor = pages / QPS
    engine.dispose()
    return (
        f"sync: {outcome.rows} orders in {pages} pages, {elapsed:.2f} s; "
        f"floor at {QPS:.0f} QPS {floor:.2f} s; ratio {elapsed / floor:.2f}"
    )


def export_ratios(work: Path) -> list[str]:
    """Each example export imported against the same orders as a plain CSV, per row."""
    examples = Path(__file__).resolve().parent.parent / "docs" / "examples"
    lines = []
    for name, path, shop in (
        ("tiktok-export", examples / "tiktok-orders-export.csv", "tts-us-01"),
        ("amazon-orders-report", examples / "amazon-all-orders-report.txt", "amz-jp-01"),
        ("shopee-export", examples / "shopee-orders-export.xlsx", "shp-sg-01"),
    ):
        organisation = load_organisation(shop_config(work / name))
        url_a, url_b = (
            f"sqlite:///{work / (name + '-a.db')}",
            f"sqlite:///{work / (name + '-b.db')}",
        )
        upgrade(url_a)
        upgrade(url_b)
        started = time.perf_counter()
        source = read_export(path, name, organisation.shops[shop])["orders"]
        rows = list(source.rows)
        import_rows(
            make_engine(url_a),
            organisation,
            KINDS["orders"],
            type(source)(source.name, source.header, rows),
            now=1,
        )
        export_time = time.perf_counter() - started
        plain = work / f"{name}.csv"
        with plain.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(source.header)
            writer.writerows(values for _, values, _ in rows)
        started = time.perf_counter()
        import_file(make_engine(url_b), organisation, KINDS["orders"], plain)
        plain_time = time.perf_counter() - started
        lines.append(
            f"{name}: {len(rows)} orders, export {export_time * 1000:.1f} ms, "
            f"plain CSV {plain_time * 1000:.1f} ms, ratio {plain_time / export_time:.2f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=5000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kpibot-sync-bench-"))
    try:
        print(sync_ratio(args.orders, work))
        for line in export_ratios(work):
            print(line)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
