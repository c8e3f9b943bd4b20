"""Recorded deliveries answered once: by this process or by workers, after a crash, by several
workers at a time, woken by PostgreSQL notifications (bot/chat/inbox.py, bot/chat/pipeline.py).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import IntegrityError

from bot.chat.inbox import Inbox
from bot.chat.messages import InboundMessage
from bot.compose import Bot, compose
from bot.runtime import Runtime
from config.settings import Settings
from kpi_engine.models import Annotation, InboundEvent
from kpi_engine.organisation import Organisation
from tests.fakechat import Dialog, FakeChat
from tests.pinned import PINNED_AT
from tests.waiting import wait_for

_EVENTS = InboundEvent.__table__  # type: ignore[attr-defined]
LEASE = 30.0


class Clock:
    """A clock the test moves (a lease running out)."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock() -> Clock:
    from kpi_engine.instants import parse_instant, zone

    return Clock(float(parse_instant(PINNED_AT, zone("Asia/Shanghai"))))


def process(
    engine: Engine, organisation: Organisation, clock: Clock, *, queue: bool
) -> tuple[Bot, FakeChat]:
    """One process's chat side on a fake Slack: a web process with `queue` (it only records),
    otherwise one that answers (a worker, or the web process on its own)."""
    chat = FakeChat("slack")
    settings = Settings(  # type: ignore[call-arg]
        KPIBOT_CHAT_QUEUE=queue, KPIBOT_INBOUND_LEASE_SECONDS=LEASE
    )
    runtime = Runtime(settings, engine, organisation, clock)
    return compose(runtime, {"slack": chat}, limits={}), chat


def states(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(select(_EVENTS.c.state)).scalars())


def notes(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Annotation)).scalar_one())


@pytest.fixture
def people(engine: Engine, organisation: Organisation, clock: Clock) -> Dialog:
    """Builds the messages people send (its own bot is not used)."""
    return Dialog(engine, organisation, int(clock()))


def test_a_web_process_with_workers_only_records_and_a_worker_answers_once(
    engine: Engine, organisation: Organisation, clock: Clock, people: Dialog
) -> None:
    web, web_chat = process(engine, organisation, clock, queue=True)
    message = people.message("li.na", "加备注 TikTok算法调整 昨天")
    assert web.pipeline.accept(message)
    assert not web.pipeline.accept(message)  # the platform's retry is a duplicate
    web.sender.drain()
    assert web_chat.sent == [] and notes(engine) == 0
    assert states(engine) == Counter({"pending": 1})
    with engine.connect() as conn:
        payload = conn.execute(select(_EVENTS.c.payload)).scalar_one()
    assert "TikTok算法调整" in json.loads(payload)["text"]  # kept until it is answered

    worker, worker_chat = process(engine, organisation, clock, queue=False)
    assert worker.pipeline.work_once() == 1
    worker.sender.drain()
    assert len(worker_chat.sent) == 1 and notes(engine) == 1
    assert states(engine) == Counter({"done": 1})
    with engine.connect() as conn:
        assert conn.execute(select(_EVENTS.c.payload)).scalar_one() is None
    assert worker.pipeline.work_once() == 0


def test_a_process_that_died_before_answering_is_made_good_once_its_lease_runs_out(
    engine: Engine, organisation: Organisation, clock: Clock, people: Dialog
) -> None:
    # The web process records (and leases to itself) a note, acknowledges, and dies before
    # the answer is stored: nothing was written but the delivery.
    dead, dead_chat = process(engine, organisation, clock, queue=False)
    message = people.message("li.na", "加备注 TikTok算法调整 昨天")
    assert dead.pipeline.inbox.record(message, event_id=message.event_id, claim=True)
    restarted, chat = process(engine, organisation, clock, queue=False)
    assert restarted.pipeline.work_once() == 0  # still leased to the process that died
    clock.at += LEASE + 1
    assert restarted.pipeline.work_once() == 1
    restarted.sender.drain()
    assert len(chat.sent) == 1 and notes(engine) == 1 and dead_chat.sent == []


def test_a_worker_that_stalled_past_its_lease_and_finishes_late_changes_nothing(
    engine: Engine, organisation: Organisation, clock: Clock, people: Dialog
) -> None:
    web, _ = process(engine, organisation, clock, queue=True)
    assert web.pipeline.accept(people.message("li.na", "加备注 TikTok算法调整 昨天"))
    stalled, stalled_chat = process(engine, organisation, clock, queue=False)
    (claimed,) = stalled.pipeline.inbox.claim()
    clock.at += LEASE + 1  # it stalls past its lease; another worker takes over
    other, chat = process(engine, organisation, clock, queue=False)
    assert other.pipeline.work_once() == 1
    stalled.pipeline.work(claimed)  # …and then finishes: its whole answer is rolled back
    for bot in (stalled, other):
        bot.sender.drain()
    assert len(chat.sent) == 1 and stalled_chat.sent == [] and notes(engine) == 1
    assert states(engine) == Counter({"done": 1})


def test_the_answer_and_the_delivery_commit_together_and_the_reply_leaves_once(
    engine: Engine, organisation: Organisation, clock: Clock, people: Dialog
) -> None:
    worker, chat = process(engine, organisation, clock, queue=False)
    failing = threading.Event()
    send = chat.send

    def send_or_fail(*args: object, **kwargs: object) -> object:
        if failing.is_set():
            raise ConnectionError("the platform is down")
        return send(*args, **kwargs)  # type: ignore[arg-type]

    chat.send = send_or_fail  # type: ignore[method-assign]
    failing.set()
    assert worker.pipeline.accept(people.message("li.na", "加备注 直播设备故障 今天"))
    # The send failed, but the answer was stored with the delivery's "done": nobody answers
    # the delivery again; the outbox delivers the stored reply once the platform is back.
    assert states(engine) == Counter({"done": 1}) and notes(engine) == 1
    assert chat.sent == []
    failing.clear()
    clock.at += 3600
    worker.sender.drain()
    assert len(chat.sent) == 1
    assert worker.pipeline.work_once() == 0


@pytest.mark.parametrize("workers", [4])
def test_several_workers_answer_each_delivery_once(
    engine: Engine, organisation: Organisation, clock: Clock, people: Dialog, workers: int
) -> None:
    web, _ = process(engine, organisation, clock, queue=True)
    messages = [people.message("li.na", "帮助") for _ in range(40)]
    for message in messages:
        assert web.pipeline.accept(message)
    processes = [process(engine, organisation, clock, queue=False) for _ in range(workers)]
    start = threading.Barrier(workers)

    def run(bot: Bot) -> None:
        start.wait()
        while bot.pipeline.work_once(limit=3):
            pass
        bot.sender.drain()

    threads = [threading.Thread(target=run, args=(bot,)) for bot, _ in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    answered = Counter(target.channel for _, chat in processes for _, target in chat.sent)
    assert sum(answered.values()) == len(messages)
    assert states(engine) == Counter({"done": len(messages)})
    with engine.connect() as conn:  # every delivery was claimed exactly once
        assert set(conn.execute(select(_EVENTS.c.attempts)).scalars()) == {1}


@pytest.fixture
def recording_engine(db_url: str) -> Iterator[Engine]:
    """A second engine on the same database: another process's connections."""
    other = create_engine(db_url)
    yield other
    other.dispose()


def test_a_waiting_worker_answers_a_delivery_recorded_by_another_process_at_once(
    engine: Engine,
    recording_engine: Engine,
    organisation: Organisation,
    clock: Clock,
    people: Dialog,
) -> None:
    worker, chat = process(engine, organisation, clock, queue=False)
    # The web process: its own engine (PostgreSQL: its NOTIFY wakes the worker; SQLite: the
    # worker's look at the state index sees the new row).
    web, _ = process(recording_engine, organisation, clock, queue=True)
    stop = threading.Event()
    # It looks for lapsed leases once at start, then every hour: only a recording can wake it
    # within the test.
    loop = threading.Thread(target=worker.pipeline.run_worker, args=(stop,), kwargs={"poll": 3600})
    loop.start()
    try:
        wait_for(lambda: loop.is_alive(), "the worker")
        for n in range(3):
            assert web.pipeline.accept(people.message("li.na", "帮助"))
            wait_for(lambda n=n: len(chat.sent) == n + 1, f"answer {n + 1}", 60)  # type: ignore[misc]
    finally:
        stop.set()
        loop.join(30)
    assert not loop.is_alive()
    assert states(engine) == Counter({"done": 3})


@dataclass
class Held:
    """What `first_write_held` saw: the statements that recorded deliveries, and how many
    deliveries waited for the next batch when the first was let go."""

    writes: int = 0
    waited: int | None = None


@contextmanager
def first_write_held(engine: Engine, inbox: Inbox, until: int) -> Iterator[Held]:
    """Count the statements recording deliveries on `engine` while the block runs (a batch is
    one, in one transaction), holding the first once it ran until `until` deliveries wait in
    `inbox` for the next batch (30 s at most)."""
    held = Held()

    def executed(*args: object) -> None:
        statement = str(args[2])
        if "INSERT INTO inbound_events" not in statement:
            return
        held.writes += 1
        if held.writes == 1:
            deadline = time.monotonic() + 30
            while len(inbox._queue) < until and time.monotonic() < deadline:
                time.sleep(0.01)
            held.waited = len(inbox._queue)

    event.listen(engine, "after_cursor_execute", executed)
    try:
        yield held
    finally:
        event.remove(engine, "after_cursor_execute", executed)


def test_deliveries_arriving_together_are_recorded_in_batches_each_once(
    engine: Engine, organisation: Organisation, clock: Clock, people: Dialog
) -> None:
    # 32 request threads at once, each delivery sent twice (a platform's retry racing the
    # first): every one is recorded once and the retry is told it is a duplicate. While one
    # batch is written, the deliveries arriving meanwhile wait and are written together, in one
    # statement: the first is held until the other 31 threads' deliveries wait.
    web, _ = process(engine, organisation, clock, queue=True)
    inbox = web.pipeline.inbox
    messages = [people.message("li.na", "帮助") for _ in range(160)]
    outcomes: dict[str, list[int | None]] = {m.event_id: [] for m in messages}
    start = threading.Barrier(32)
    lock = threading.Lock()

    def post(share: list[InboundMessage]) -> None:
        start.wait()
        for message in share:
            id = inbox.record(message, event_id=message.event_id, claim=False)
            with lock:
                outcomes[message.event_id].append(id)

    twice = messages + messages
    threads = [threading.Thread(target=post, args=(twice[n::32],)) for n in range(32)]
    with first_write_held(engine, inbox, until=31) as held:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    for found in outcomes.values():
        assert len(found) == 2 and found.count(None) == 1
    ids = [id for found in outcomes.values() for id in found if id is not None]
    assert len(set(ids)) == len(messages)
    assert states(engine) == Counter({"pending": len(messages)})
    # The 31 that waited behind the first batch were written by one statement.
    assert held.waited == 31 and held.writes <= len(twice) - 30


def test_a_process_that_acknowledges_faster_than_it_answers_leaves_the_rest_in_the_table(
    engine: Engine, organisation: Organisation, clock: Clock, people: Dialog
) -> None:
    # One process (no workers) holds at most IN_HAND deliveries in memory to answer; the
    # others are recorded unleased and claimed from the table as its threads free up: each
    # answered once.
    chat = FakeChat("slack")
    settings = Settings()  # type: ignore[call-arg]
    threads = ThreadPoolExecutor(max_workers=1)
    busy = threading.Event()
    threads.submit(busy.wait, 60)  # its one thread is busy: nothing in hand is answered yet
    runtime = Runtime(settings, engine, organisation, clock)
    bot = compose(runtime, {"slack": chat}, workers=threads, limits={})
    bot.pipeline.IN_HAND = 3
    messages = [people.message("li.na", "帮助") for _ in range(10)]
    try:
        for message in messages:
            assert bot.pipeline.accept(message)
        with engine.connect() as conn:
            leases = list(conn.execute(select(_EVENTS.c.lease_until)).scalars())
        assert sum(lease is None for lease in leases) == 7 and len(leases) == 10
        busy.set()
        wait_for(lambda: states(engine) == Counter({"done": 10}), "all ten answered")
        bot.sender.drain()
        assert len(chat.sent) == 10
        assert len({target.channel for _, target in chat.sent}) == 1
    finally:
        busy.set()
        threads.shutdown()


def test_deliveries_awaited_on_the_event_loop_share_batches_with_request_threads(
    engine: Engine, organisation: Organisation, clock: Clock, people: Dialog
) -> None:
    # A web process whose workers answer records from its event loop (`accept_async`): the
    # coroutines wait for their batch without a thread each. 110 coroutines (10 of them a
    # retry of another) and 8 request threads arrive while the first batch is held: the other
    # 117 are written by one statement, each delivery once, the retries told they are
    # duplicates, and the threads get their ids as before.
    web, _ = process(engine, organisation, clock, queue=True)
    pipeline, inbox = web.pipeline, web.pipeline.inbox
    messages = [people.message("li.na", "帮助") for _ in range(100)]
    twice = messages + messages[:10]
    by_threads = [people.message("li.na", "帮助") for _ in range(8)]
    ids: dict[str, int | None] = {}

    def post(message: InboundMessage) -> None:
        ids[message.event_id] = inbox.record(message, event_id=message.event_id, claim=False)

    threads = [threading.Thread(target=post, args=(m,)) for m in by_threads]

    async def arrive(held: Held) -> list[bool]:
        tasks = [asyncio.ensure_future(pipeline.accept_async(twice[0]))]
        await asyncio.to_thread(wait_for, lambda: held.writes > 0, "the first batch's write")
        tasks += [asyncio.ensure_future(pipeline.accept_async(m)) for m in twice[1:]]
        for thread in threads:
            thread.start()
        return list(await asyncio.gather(*tasks))

    with first_write_held(engine, inbox, until=len(twice) - 1 + len(by_threads)) as held:
        taken = asyncio.run(arrive(held))
        for thread in threads:
            thread.join(60)
    assert taken == [True] * 100 + [False] * 10
    assert len(ids) == 8 and all(isinstance(id, int) for id in ids.values())
    assert held.waited == 117 and held.writes == 2
    assert states(engine) == Counter({"pending": 108})

    # One the database refuses (no sender) fails its own coroutine only.
    first, good = people.message("li.na", "帮助"), people.message("li.na", "帮助")
    refused = replace(people.message("li.na", "帮助"), sender=None)  # type: ignore[arg-type]

    async def with_refused(held: Held) -> list[object]:
        tasks = [asyncio.ensure_future(pipeline.accept_async(first))]
        await asyncio.to_thread(wait_for, lambda: held.writes > 0, "the first batch's write")
        tasks += [asyncio.ensure_future(pipeline.accept_async(m)) for m in (good, refused)]
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    with first_write_held(engine, inbox, until=2) as held:
        outcomes = asyncio.run(with_refused(held))
    assert outcomes[:2] == [True, True] and isinstance(outcomes[2], IntegrityError)
    assert held.waited == 2
    assert states(engine) == Counter({"pending": 110})


def test_a_delivery_the_database_refuses_does_not_fail_the_others_in_its_batch(
    engine: Engine, organisation: Organisation, clock: Clock, people: Dialog
) -> None:
    # The first delivery's write is held until the two sent meanwhile wait: one of them is
    # refused by the database (no sender). They are written together first, then, that having
    # failed, each on its own: the good one is recorded, only the refused one's request fails.
    web, _ = process(engine, organisation, clock, queue=True)
    inbox = web.pipeline.inbox
    first, good = people.message("li.na", "帮助"), people.message("li.na", "帮助")
    refused = replace(people.message("li.na", "帮助"), sender=None)  # type: ignore[arg-type]
    outcomes: dict[str, object] = {}

    def post(message: InboundMessage) -> None:
        try:
            outcomes[message.event_id] = inbox.record(
                message, event_id=message.event_id, claim=False
            )
        except Exception as exc:
            outcomes[message.event_id] = exc

    leader = threading.Thread(target=post, args=(first,))
    others = [threading.Thread(target=post, args=(m,)) for m in (good, refused)]
    with first_write_held(engine, inbox, until=2) as held:
        leader.start()
        wait_for(lambda: held.writes > 0, "the first batch's write")
        for thread in others:
            thread.start()
        for thread in [leader, *others]:
            thread.join(60)
    assert isinstance(outcomes[first.event_id], int) and isinstance(outcomes[good.event_id], int)
    assert isinstance(outcomes[refused.event_id], IntegrityError)
    assert states(engine) == Counter({"pending": 2})
