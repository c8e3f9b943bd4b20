"""The morning digest round fanned out to Feishu within its send limits (DESIGN.md §6).

    .venv/bin/python -m bench.fanout_bench [--days 8] [--database-url URL]

On the large workload (20 teams, 2,000 people; `kpibot demo --generate-only --scale large`,
here a few days of it), every team's morning digest job runs as the scheduler runs it: the
digest is computed, and a team post (with its chart) for each team group plus a private post
for each person with GMV or a target is stored in the outbox. Every person is given a Feishu
open_id, so the whole round goes to one platform and meets its strictest limit, 50 messages a
second per app (5 per second per chat or user). The outbox sender then delivers the round
through the real Feishu adapter to a fake Feishu Open API on 127.0.0.1 that
enforces those limits with Feishu's own throttle answer (429, x-ogw-ratelimit-reset) and
deduplicates sends by uuid.

Printed: messages, the delivery time, the rate-limit floor (messages ÷ 50 per second, the
fastest any sender could go), their ratio (target ≤ 1.1), 429s, and lost and duplicated
messages (target 0 and 0). Computing the round is timed separately.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml
from sqlalchemy import func, select

from adapters.feishu.outbound import FeishuAdapter
from bench.engine_bench import IMPORT_ORDER
from bot.compose import compose
from bot.outbox import LIMITS
from bot.runtime import Runtime
from config.settings import Settings
from kpi_engine.clock import system_clock
from kpi_engine.db import make_engine, upgrade
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.models import Order, OutboxMessage
from kpi_engine.organisation import load_organisation
from tests.fakefeishu import FakeFeishu

KPIBOT = str(Path(sys.executable).parent / "kpibot")
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
_ORDERS = Order.__table__  # type: ignore[attr-defined]


def prepare(work: Path, days: int, scale: str) -> Path:
    """A workload of `days` days in which every person has a Feishu open_id."""
    subprocess.run(
        [
            KPIBOT,
            "demo",
            "--generate-only",
            "--scale",
            scale,
            "--days",
            str(days),
            "--out",
            str(work),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    people_file = work / "config" / "people.yaml"
    people = yaml.safe_load(people_file.read_text())
    for person in people["people"]:
        chat = person.setdefault("chat", {})
        if not chat.get("feishu"):
            chat["feishu"] = "ou_" + hashlib.sha256(person["id"].encode()).hexdigest()[:32]
    people_file.write_text(yaml.safe_dump(people, allow_unicode=True, sort_keys=False))
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=8, help="days of the large workload")
    parser.add_argument("--scale", default="large", help="large, or small for a smoke run")
    parser.add_argument("--database-url", help="default: a new SQLite file")
    parser.add_argument(
        "--mornings",
        type=int,
        default=2,
        help="consecutive morning rounds stored before delivery starts (one round of the "
        "large workload is ~1,100 messages: 20 groups and the people with GMV or a target)",
    )
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kpibot-fanout-") as tmp:
        work = prepare(Path(tmp), options.days, options.scale)
        url = options.database_url or f"sqlite:///{work / 'fanout.db'}"
        upgrade(url)
        engine = make_engine(url)
        organisation = load_organisation(work / "config")
        started = time.perf_counter()
        for kind, name in IMPORT_ORDER:
            import_file(engine, organisation, KINDS[kind], work / "data" / name)
        took = time.perf_counter() - started
        print(f"imported {options.days} days of the large workload in {took:.0f} s")

        with FakeFeishu(
            per_chat=LIMITS["feishu"].per_target, per_app=LIMITS["feishu"].per_app
        ) as fake:
            adapter = FeishuAdapter("cli_fanoutbench0001", "secret", fake.url)
            with engine.connect() as conn:  # the data ends at its "now": the last order
                now = int(conn.execute(select(func.max(_ORDERS.c.create_time))).scalar_one())
            runtime = Runtime(Settings(), engine, organisation, system_clock)
            bot = compose(runtime, {"feishu": adapter})
            outbox, sender, scheduler = bot.outbox, bot.sender, bot.scheduler
            started = time.perf_counter()
            for job in scheduler.jobs.values():
                if job.kind == "morning":
                    for nominal in job.firings(now - options.mornings * 86400, now):
                        scheduler.execute(job, nominal)
            compute = time.perf_counter() - started
            with engine.connect() as conn:
                keys = list(conn.execute(select(_OUTBOX.c.key)).scalars())
            expected = len(keys)
            teams = sum(1 for key in keys if ":oc_" in key)
            print(
                f"{options.mornings} morning rounds computed and stored: {expected:,} messages "
                f"({teams} team group posts with charts, {expected - teams:,} personal) "
                f"in {compute:.1f} s"
            )

            started = time.perf_counter()
            sender.drain()
            elapsed = time.perf_counter() - started
            sender.stop()

            states = Counter(outbox.counts())
            posted = Counter(
                (m.receive_id, hashlib.sha256(repr(m.content).encode()).hexdigest())
                for m in fake.messages
            )
            lost = expected - len(fake.messages) + sum(n - 1 for n in posted.values() if n > 1)
            duplicated = sum(n - 1 for n in posted.values() if n > 1)
            floor = expected / LIMITS["feishu"].per_app  # type: ignore[operator]
            print(f"delivered {len(fake.messages):,} of {expected:,} in {elapsed:.1f} s")
            print(
                f"rate-limit floor: {expected:,} ÷ {LIMITS['feishu'].per_app:.0f}/s = {floor:.1f} s"
            )
            print(f"ratio: {elapsed / floor:.3f} (target ≤ 1.1)")
            print(f"throttled (429) answers: {fake.throttled}; uuid repeats: {fake.repeated_uuids}")
            print(f"lost: {lost}; duplicated: {duplicated}; outbox: {dict(states)}")
            if lost or duplicated:
                sys.exit(1)
        engine.dispose()


if __name__ == "__main__":
    main()
