"""Webhook acknowledgements, throughput and exactly-once replies (issue 20), beside a bare
endpoint measured in the same run.

    .venv/bin/python -m bench.webhook_bench [--count 2000] [--concurrency 64] [--workers 2]
        [--backends sqlite,postgresql] [--platforms slack,feishu]

`kpibot serve` runs as a user runs it, a fresh process on a demo workspace (`kpibot demo`,
the clock pinned; on PostgreSQL the same files imported into a fresh database), with Slack
(Events API) and Feishu (event webhook, encrypted and signed) configured against the fake
platforms on 127.0.0.1 (in a process of their own, so that answering the replies does not
take the clients' interpreter lock). `--concurrency` clients post `--count` signed deliveries of
"今天GMV多少" per platform, each from a direct chat of its own, and time each request until its
response (the acknowledgement). Then the bench waits until the fakes have received the replies
and counts them per chat: every delivery answered, none twice.

Each backend is measured twice: `kpibot serve` alone (it answers in its own threads) and
`kpibot serve --workers N` (it only verifies, records and acknowledges; N `kpibot worker`
processes answer). The comparison point, measured in the same run under the same load: a bare
FastAPI app (one POST endpoint answering `{}`) under the same uvicorn settings.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.client import HTTPConnection
from multiprocessing.connection import Connection
from pathlib import Path

from bench.memory_bench import (
    BARE,
    KPIBOT,
    NOW,
    Delivery,
    feishu,
    free_port,
    post,
    serve_env,
    serving,
    slack,
)
from tests.fakefeishu import FakeFeishu
from tests.fakeslack import FakeSlack

PG_ADMIN = os.environ.get(
    "KPIBOT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Load:
    """`concurrency` clients posting the deliveries `make(0..count-1)`; each request timed."""

    def __init__(self, port: int, make: Callable[[int], Delivery], count: int) -> None:
        self.port, self.make, self.count = port, make, count
        self.next = 0
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()

    def client(self) -> None:
        connection = HTTPConnection("127.0.0.1", self.port, timeout=60)
        while True:
            with self.lock:
                n, self.next = self.next, self.next + 1
            if n >= self.count:
                break
            delivery = self.make(n)
            started = time.perf_counter()
            status, connection = post(connection, self.port, delivery)
            took = time.perf_counter() - started
            with self.lock:
                self.latencies.append(took)
                self.statuses[status] += 1
        connection.close()

    def run(self, concurrency: int) -> float:
        """Post them all; the wall time in seconds."""
        threads = [threading.Thread(target=self.client) for _ in range(concurrency)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started

    def summary(self, wall: float) -> tuple[float, float, float]:
        """p50 and p99 in ms, and requests per second."""
        return (
            statistics.median(self.latencies) * 1000,
            percentile(self.latencies, 0.99) * 1000,
            len(self.latencies) / wall,
        )


def timed(
    port: int, make: Callable[[int], Delivery], options: argparse.Namespace
) -> tuple[float, float, float, dict[int, int]]:
    """Post `options.warmup` deliveries untimed, then `options.count` timed: p50 and p99 in
    ms, requests per second, and the HTTP statuses of the timed ones."""
    Load(port, make, options.warmup).run(options.concurrency)
    load = Load(port, lambda n: make(options.warmup + n), options.count)
    p50, p99, rate = load.summary(load.run(options.concurrency))
    return p50, p99, rate, dict(sorted(load.statuses.items()))


def makers(config: Path, run: str) -> dict[str, tuple[Callable[[int], Delivery], str]]:
    """Per platform: the n-th delivery (demo people in turn, each from a direct chat of its
    own, named after `run` and n) and the prefix of those chats' ids."""
    import yaml

    people = yaml.safe_load((config / "people.yaml").read_text(encoding="utf-8"))["people"]
    chats = [p.get("chat") or {} for p in people]
    on_slack = [c["slack"] for c in chats if c.get("slack")]
    on_feishu = [c["feishu"] for c in chats if c.get("feishu")]
    return {
        "slack": (lambda n: slack(on_slack[n % len(on_slack)], f"D{run}{n:06d}"), f"D{run}"),
        "feishu": (
            lambda n: feishu(on_feishu[n % len(on_feishu)], f"oc_{run}_{n:06d}"),
            f"oc_{run}_",
        ),
    }


def replies(
    fake_slack: FakeSlack, fake_feishu: FakeFeishu, platform: str, prefix: str
) -> Counter[str]:
    """Replies the fake platform received, per chat whose id starts with `prefix`."""
    if platform == "slack":
        calls = fake_slack.calls_to("chat.postMessage") + fake_slack.calls_to("chat.postEphemeral")
        chats = [str(c.get("channel", "")) for c in calls]
    else:
        chats = [m.chat_id or m.receive_id for m in list(fake_feishu.messages)]
    return Counter(c for c in chats if c.startswith(prefix))


def _platforms(pipe: Connection) -> None:
    """The fake Slack and Feishu, in a process of their own: they answer the replies while
    the load runs, and in the load's process they would take its interpreter lock from the
    clients (the bare endpoint gets no replies to answer). Sends their addresses, then answers
    `(platform, prefix)` with the replies counted so far, until it gets None."""
    with FakeSlack() as fake_slack, FakeFeishu() as fake_feishu:
        pipe.send((fake_slack.token, fake_slack.base_url, fake_feishu.url))
        while (asked := pipe.recv()) is not None:
            pipe.send(replies(fake_slack, fake_feishu, *asked))


class Platforms:
    """The fake platforms' process (`_platforms`), as the bench uses them."""

    def __enter__(self) -> Platforms:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_platforms, args=(child,), daemon=True)
        self._process.start()
        self.slack_token, self.slack_url, self.feishu_url = self._pipe.recv()
        return self

    def replies(self, platform: str, prefix: str) -> Counter[str]:
        self._pipe.send((platform, prefix))
        counted: Counter[str] = self._pipe.recv()
        return counted

    def __exit__(self, *exc: object) -> None:
        self._pipe.send(None)
        self._process.join(30)


@contextmanager
def workspace(tmp: Path, backend: str, days: int) -> Iterator[tuple[Path, str]]:
    """The demo workspace's configuration directory and a database URL holding its data."""
    directory = tmp / "demo"
    if not directory.exists():
        subprocess.run(
            [KPIBOT, "demo", "--dir", str(directory), "--days", str(days), "--no-chat",
             "--now", NOW],
            check=True, capture_output=True,
        )  # fmt: skip
    config = directory / "config"
    if backend == "sqlite":
        yield config, f"sqlite:///{directory / 'kpibot.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from kpi_engine.db import make_engine, upgrade
    from kpi_engine.demo_data import _FILES as DEMO_FILES
    from kpi_engine.demo_data import FILE_KINDS
    from kpi_engine.ingest.formats import KINDS
    from kpi_engine.ingest.importer import import_file
    from kpi_engine.instants import parse_instant, zone
    from kpi_engine.organisation import load_organisation
    from kpi_engine.rollups import Rollups

    name = f"kpibot_webhook_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        engine = make_engine(url)
        organisation = load_organisation(config)
        moment = parse_instant(NOW, zone("Asia/Shanghai"))
        for label, file in DEMO_FILES:  # in the order they must be imported
            path = directory / "data" / file
            if not path.exists():
                continue
            kind = KINDS[FILE_KINDS.get(label, label)]
            report = import_file(engine, organisation, kind, path, now=moment)
            assert report.ok, report.render()
        Rollups(engine, organisation).ensure_current(now=moment)
        engine.dispose()
        yield config, url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="deliveries per platform")
    parser.add_argument("--concurrency", type=int, default=64, help="clients posting at once")
    parser.add_argument("--workers", type=int, default=2, help="`serve --workers N`")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--platforms", default="slack,feishu")
    parser.add_argument("--days", type=int, default=30, help="days of data in the workspace")
    parser.add_argument(
        "--warmup", type=int, default=64, help="deliveries posted first, untimed (each server)"
    )
    parser.add_argument("--answer-timeout", type=float, default=600.0)
    options = parser.parse_args()
    platforms = options.platforms.split(",")

    rows: list[str] = []
    lost = duplicated = 0
    with tempfile.TemporaryDirectory(prefix="kpibot-webhook-") as tmp, Platforms() as fakes:
        for backend in options.backends.split(","):
            with workspace(Path(tmp), backend, options.days) as (config, url):
                env = {
                    **serve_env(
                        config,
                        url,
                        Path(tmp) / "cache",
                        slack=(fakes.slack_token, fakes.slack_url),
                        feishu=fakes.feishu_url,
                    ),
                    "KPIBOT_SCHEDULER": "false",
                }
                modes = [("serve", 0), (f"serve --workers {options.workers}", options.workers)]
                for platform in platforms:
                    run = uuid.uuid4().hex[:6]
                    make, _ = makers(config, run)[platform]
                    port = free_port()
                    with serving([sys.executable, "-c", BARE, str(port)], env, port):
                        bare = timed(port, make, options)
                    rows.append(
                        f"| {backend} | bare endpoint | {platform} | {bare[0]:.0f} / "
                        f"{bare[1]:.0f} ms | {bare[2]:,.0f}/s | 1.00× | — |"
                    )
                    for mode, workers in modes:
                        run = uuid.uuid4().hex[:6]
                        make, prefix = makers(config, run)[platform]
                        port = free_port()
                        argv = [KPIBOT, "serve", "--port", str(port)]
                        if workers:
                            argv += ["--workers", str(workers)]
                        with serving(argv, env, port):
                            p50, p99, rate, statuses = timed(port, make, options)
                            expected = options.warmup + options.count
                            deadline = time.monotonic() + options.answer_timeout
                            while (
                                len(fakes.replies(platform, prefix)) < expected
                                and time.monotonic() < deadline
                            ):
                                time.sleep(0.5)
                            time.sleep(1.0)  # a late duplicate would show now
                            got = fakes.replies(platform, prefix)
                        missing = expected - len(got)
                        twice = sum(n - 1 for n in got.values() if n > 1)
                        lost, duplicated = lost + missing, duplicated + twice
                        rows.append(
                            f"| {backend} | kpibot {mode} | {platform} | {p50:.0f} / {p99:.0f} ms "
                            f"| {rate:,.0f}/s | {rate / bare[2]:.2f}× | {len(got):,} answered, "
                            f"{missing} lost, {twice} twice; HTTP {statuses} |"
                        )
    print(
        f"webhook acknowledgements: {options.count:,} signed deliveries per platform, "
        f"{options.concurrency} concurrent clients, demo workspace of {options.days} days; "
        "comparison point: a bare FastAPI endpoint under the same uvicorn settings"
    )
    print("| backend | server | platform | ack p50 / p99 | throughput | ratio | replies |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print(f"targets: ack p99 ≤ 100 ms, throughput ≥ 0.5× bare; lost {lost}, twice {duplicated}")
    if lost or duplicated:
        raise SystemExit("some deliveries were not answered exactly once")


if __name__ == "__main__":
    main()
