"""End-to-end chat replies on the large workload (DESIGN.md §6: p99 ≤ 500 ms), beside a bare
echo command (`ping`) through the same pipeline, measured in the same run.

    .venv/bin/python -m bench.chat_bench --data DIR [--backends sqlite,postgresql] [--count 300]

DIR is the one `bench.engine_bench` filled (its databases are reused, never changed except for
the recorded deliveries). Each message goes the whole way: delivery dedupe (a database insert),
the router (language, intent, permissions), the engine (rollups, targets, rank) and the notifier
into a recording adapter. Streamers ask a mix of questions in Chinese and English.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from pathlib import Path

from bench.engine_bench import PG_ADMIN, PG_NAME
from bot.chat.messages import InboundMessage, Reply, Sent, Target
from bot.compose import compose
from bot.runtime import Runtime
from config.settings import Settings
from kpi_engine.clock import fixed_clock
from kpi_engine.db import ensure_schema, make_engine
from kpi_engine.organisation import load_organisation

QUESTIONS = (
    "今天GMV多少",
    "my GMV today",
    "本周排名",
    "how am I doing this week",
    "为什么GMV下降了",
    "本月退货率",
    "my score this month",
    "compare GMV this week",
)


class Recorder:
    """An adapter that keeps replies in memory (the platform's send is not measured here)."""

    platform = "slack"
    private_in_place = True

    def __init__(self) -> None:
        self.sent: list[Reply] = []

    def render(self, reply: Reply, target: Target) -> object:
        return reply

    def send(self, reply: Reply, target: Target, *, key: str | None = None) -> Sent:
        self.sent.append(reply)
        return Sent(self.platform, target.channel, str(len(self.sent)))

    def update(self, sent: Sent, reply: Reply) -> Sent:
        return sent


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def bench(backend: str, data: Path, count: int, pg_name: str = PG_NAME) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{data / 'engine_bench.db'}"
    else:
        url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        url = f"{url}/{pg_name}"
    ensure_schema(url)  # a database filled by an older kpibot gets the newer tables
    organisation = load_organisation(data / "config")
    engine = make_engine(url)
    with engine.connect() as conn:
        last_paid = conn.exec_driver_sql("SELECT max(paid_time) FROM orders").scalar_one()
    now = int(last_paid) - 3600  # during the data's last day
    recorder = Recorder()
    runtime = Runtime(Settings(), engine, organisation, fixed_clock(now))
    pipeline = compose(runtime, {"slack": recorder}, limits={}).pipeline
    streamers = [p for p in organisation.people.values() if p.role == "streamer" and p.chat.slack]
    rng = random.Random(7)
    run = uuid.uuid4().hex[:8]

    def ask(text: str, n: int) -> float:
        person = rng.choice(streamers)
        message = InboundMessage(
            "slack", "T1", f"D{person.id}", person.chat.slack or "", text, f"{run}-{n}", now,
            is_direct=True,
        )  # fmt: skip
        started = time.perf_counter()
        assert pipeline.accept(message)
        return (time.perf_counter() - started) * 1000

    ask("ping", -1)  # warm-up: rollups current, connections open
    echo = [ask("ping", n) for n in range(count)]
    questions = [ask(QUESTIONS[n % len(QUESTIONS)], count + n) for n in range(count)]
    assert all("抱歉" not in r.text and "Sorry" not in r.text for r in recorder.sent)
    print(f"{backend}: {count} replies each, through dedupe + router + engine + notifier")
    print(f"  {'':<26}{'p50':>10}{'p99':>10}")
    print(f"  {'echo (ping)':<26}{statistics.median(echo):>8.1f} ms{p99(echo):>8.1f} ms")
    print(
        f"  {'KPI questions':<26}{statistics.median(questions):>8.1f} ms"
        f"{p99(questions):>8.1f} ms   target p99 ≤ 500 ms "
        f"{'✓' if p99(questions) <= 500 else '✗'}; ratio p99 {p99(questions) / p99(echo):.1f}×"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--pg-name", default=PG_NAME, help="the PostgreSQL database to use")
    options = parser.parse_args()
    for backend in options.backends.split(","):
        bench(backend, options.data, options.count, options.pg_name)


if __name__ == "__main__":
    main()
