"""Recorded deliveries: what the platforms sent, kept until it is answered.

A web process verifies a delivery, records it here and acknowledges — nothing else. The row
holds the message (or button click) as JSON; whoever answers it claims it with a lease, and
marks it done in the same transaction that stores the answer and its effects (outbox rows,
appeals, notes), so a delivery is answered once:

- a duplicate delivery finds its key taken and is dropped at `record`;
- a process that dies before the answer is stored leaves the row claimed until its lease runs
  out; then another worker (or the restarted process) claims and answers it;
- a process that dies after the answer is stored has marked the row done with it; the reply
  itself then leaves through the outbox, whose key (one per delivery) keeps it single.

Recordings from many request threads are written together (`Inbox.record`): the first thread
to arrive writes everything waiting in one transaction while the others wait for it, and the
next batch is written by the first thread that arrived meanwhile — one commit (one write lock
on SQLite; on PostgreSQL one statement, one round trip, with its NOTIFY) for all the
deliveries that came in during the last one. A web process whose workers answer records
from its event loop (`Inbox.record_async`): the coroutine waits in the same line without a
thread of its own, and a batch's outcomes go back to the loop in one call.

On PostgreSQL workers claim with `FOR UPDATE SKIP LOCKED` (several workers never take the same
row) and are woken by a notification on `kpibot_inbound`, sent by the recording statement,
rather than polling. On SQLite the write lock serialises claims, and workers in other
processes notice a recording by a cheap read every tenth of a second (`Listener`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.chat.messages import Action, InboundMessage
from kpi_engine.clock import Clock, system_clock
from kpi_engine.models import InboundEvent
from kpi_engine.units import writing

log = logging.getLogger(__name__)
_EVENTS = InboundEvent.__table__  # type: ignore[attr-defined]
CHANNEL = "kpibot_inbound"  # the PostgreSQL notification channel workers listen on
# What `Inbox.record` writes, with the columns' PostgreSQL types (from the model).
_RECORDED = (
    "platform",
    "workspace",
    "event_id",
    "sender",
    "channel",
    "received_at",
    "kind",
    "payload",
    "state",
    "lease_until",
    "attempts",
)
_POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]
_TYPED = ", ".join(f"{n} {_EVENTS.c[n].type.compile(dialect=_POSTGRESQL)}" for n in _RECORDED)
_PG_RECORD = f"""
WITH recorded AS (
    INSERT INTO {_EVENTS.name} ({", ".join(_RECORDED)})
    SELECT {", ".join(_RECORDED)} FROM jsonb_to_recordset(%s::jsonb) AS batch({_TYPED})
    ON CONFLICT (platform, workspace, event_id) DO NOTHING
    RETURNING id, platform, workspace, event_id, lease_until IS NULL AS unleased
)
SELECT id, platform, workspace, event_id,
       CASE WHEN unleased THEN pg_notify('{CHANNEL}', '') END
FROM recorded
"""


class AlreadyAnswered(Exception):
    """The delivery was answered by another process meanwhile."""


@dataclass(frozen=True)
class Delivery:
    """A recorded delivery claimed for answering."""

    id: int
    item: InboundMessage | Action
    attempts: int


def to_payload(item: InboundMessage | Action) -> str:
    """A message or click as the JSON stored with its delivery: ASCII, so that whatever the
    platform sent (a lone surrogate, say) is stored and read back exactly; the pipeline makes
    the text displayable when it answers."""
    return json.dumps(asdict(item))


def from_payload(kind: str, payload: str) -> InboundMessage | Action:
    """The message or click `to_payload` stored."""
    data: dict[str, Any] = json.loads(payload)
    if kind == "action":
        return Action(**data)
    data["mentions"] = tuple(data.get("mentions", ()))
    return InboundMessage(**data)


class _Waiting:
    """One delivery waiting to be recorded by the batch it joins: a request thread blocked on
    `ready`, or (`future`) a coroutine on an event loop awaiting its outcome."""

    __slots__ = ("error", "future", "id", "key", "lead", "ready", "values")

    def __init__(
        self, values: dict[str, Any], future: asyncio.Future[int | None] | None = None
    ) -> None:
        self.values = values
        self.key = (values["platform"], values["workspace"], values["event_id"])
        self.future = future
        self.ready = threading.Event()
        self.lead = False  # woken to write the next batch rather than with its result
        self.id: int | None = None
        self.error: BaseException | None = None


def _settle(batch: list[_Waiting]) -> None:
    """On the event loop: hand each awaiting coroutine of a batch its outcome."""
    for waiting in batch:
        assert waiting.future is not None
        if waiting.future.done():  # its request was cancelled (the client went away)
            continue
        if waiting.error is not None:
            waiting.future.set_exception(waiting.error)
        else:
            waiting.future.set_result(waiting.id)


class Inbox:
    """The `inbound_events` table as a queue of deliveries to answer."""

    BATCH = 256  # deliveries written in one transaction at most

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = system_clock,
        lease: float = 60.0,
        max_attempts: int = 5,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.lease = lease
        self.max_attempts = max_attempts
        self._recorded = threading.Event()  # wakes a waiting worker in this process
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._writing = False  # a thread is writing a batch
        self._writer: ThreadPoolExecutor | None = None  # writes batches led by a coroutine
        # A duplicate delivery (its key recorded before) inserts nothing and returns no id.
        key = (_EVENTS.c.platform, _EVENTS.c.workspace, _EVENTS.c.event_id)
        dialect: Any = postgresql if self.postgres else sqlite
        self._insert = (
            dialect.insert(_EVENTS)
            .on_conflict_do_nothing(index_elements=key)
            .returning(_EVENTS.c.id, *key)
        )

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def record(self, item: InboundMessage | Action, *, event_id: str, claim: bool) -> int | None:
        """Record a delivery; its id, or None when it was recorded before (a duplicate).
        `claim`: this process answers it at once (it is leased to it from the start);
        otherwise it waits for a worker, woken by a notification."""
        waiting = _Waiting(self._values(item, event_id, claim))
        with self._lock:
            self._queue.append(waiting)
            waiting.lead = not self._writing
            self._writing = True
        while True:
            if waiting.lead:
                waiting.lead = False
                self._write_batch()
            else:
                waiting.ready.wait()
                waiting.ready.clear()
            if waiting.lead:
                continue
            if waiting.error is not None:
                raise waiting.error
            return waiting.id

    async def record_async(self, item: InboundMessage | Action, *, event_id: str) -> int | None:
        """`record` for a web process's event loop, of a delivery a worker answers: the
        coroutine waits for its batch without a thread of its own, and a whole batch's
        outcomes come back to the loop in one call (a thread per request, each woken in turn
        and handing its result back, cost more than the recording)."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(self._values(item, event_id, claim=False), loop.create_future())
        with self._lock:
            self._queue.append(waiting)
            lead = not self._writing
            self._writing = True
        if lead:
            self._lead()
        assert waiting.future is not None
        return await waiting.future

    def _lead(self) -> None:
        """Have the writer thread write the next batch (its first delivery is a coroutine's,
        which cannot)."""
        with self._lock:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="inbox-writer")
        self._writer.submit(self._write_batch)

    def _values(self, item: InboundMessage | Action, event_id: str, claim: bool) -> dict[str, Any]:
        now = self.clock()
        return {
            "platform": item.platform,
            "workspace": item.workspace,
            "event_id": event_id,
            "sender": item.sender,
            "channel": item.channel,
            "received_at": int(now),
            "kind": "action" if isinstance(item, Action) else "message",
            "payload": to_payload(item),
            "state": "pending",
            "lease_until": now + self.lease if claim else None,
            "attempts": 1 if claim else 0,
        }

    def _write_batch(self) -> None:
        """Write what waits (up to BATCH) in one transaction, hand each its outcome, and wake
        the first that arrived meanwhile to write the next batch."""
        with self._lock:
            batch, self._queue = self._queue[: self.BATCH], self._queue[self.BATCH :]
        first: dict[tuple[str, str, str], _Waiting] = {}
        for waiting in batch:  # the same delivery twice in one batch: one is a duplicate
            first.setdefault(waiting.key, waiting)
        try:
            self._insert_all(list(first.values()))
        except Exception as exc:
            if len(first) == 1:
                batch[0].error = exc
            else:  # each on its own: one the database refuses does not fail the others
                for waiting in first.values():
                    try:
                        self._insert_all([waiting])
                    except Exception as own:
                        waiting.id, waiting.error = None, own
        except BaseException as exc:  # interrupted: nothing of the batch was recorded
            for waiting in batch:
                waiting.id, waiting.error = None, exc
        for waiting in batch:  # a duplicate in the batch shares its twin's failure
            if waiting.id is None and waiting.error is None:
                waiting.error = first[waiting.key].error
        if any(w.id is not None and w.values["lease_until"] is None for w in batch):
            self._recorded.set()
        with self._lock:
            follower = self._queue[0] if self._queue else None
            if follower is None:
                self._writing = False
            elif follower.future is None:
                follower.lead = True
                follower.ready.set()
        if follower is not None and follower.future is not None:
            self._lead()
        settled: dict[asyncio.AbstractEventLoop, list[_Waiting]] = {}
        for waiting in batch:
            if waiting.future is None:
                waiting.ready.set()
            else:
                settled.setdefault(waiting.future.get_loop(), []).append(waiting)
        for loop, awaiting in settled.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody awaits these
                loop.call_soon_threadsafe(_settle, awaiting)

    def _insert_all(self, batch: list[_Waiting]) -> None:
        """Record `batch` in one transaction (one multi-row INSERT); a row comes back for each
        delivery recorded now, none for one recorded before. All or none."""
        rows: Sequence[Any]
        if self.postgres:
            rows = self._insert_all_postgres(batch)
        else:
            with self.engine.begin() as conn:
                rows = conn.execute(self._insert, [w.values for w in batch]).all()
        recorded = {
            (platform, workspace, event_id): id for id, platform, workspace, event_id in rows
        }
        for waiting in batch:
            found = recorded.get(waiting.key)
            waiting.id = None if found is None else int(found)

    def _insert_all_postgres(self, batch: list[_Waiting]) -> list[Any]:
        """On PostgreSQL the batch is one statement in a transaction of its own (autocommit):
        the rows travel as one JSON document, and the NOTIFY for the workers is sent from the
        same statement (`pg_notify` per unleased row recorded: identical notifications of one
        transaction are delivered once). One round trip instead of BEGIN, INSERT, NOTIFY and
        COMMIT, and one statement text for every batch size."""
        with self.engine.connect() as conn:
            result = conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                _PG_RECORD, (json.dumps([w.values for w in batch]),)
            )
            return [row[:4] for row in result]

    def claim(self, *, limit: int = 16) -> list[Delivery]:
        """Take deliveries nobody is answering (never claimed, or their lease ran out), each
        for `lease` seconds. One that has failed `max_attempts` times is given up (logged)."""
        now = self.clock()
        waiting = (_EVENTS.c.state == "pending") & (
            _EVENTS.c.lease_until.is_(None) | (_EVENTS.c.lease_until < now)
        )
        chosen = (
            select(_EVENTS.c.id)
            .where(waiting)
            .order_by(_EVENTS.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # SQLite: its write lock serialises
        )
        statement = (
            update(_EVENTS)
            .where(_EVENTS.c.id.in_(chosen.scalar_subquery()))
            .values(lease_until=now + self.lease, attempts=_EVENTS.c.attempts + 1)
            .returning(_EVENTS.c.id, _EVENTS.c.kind, _EVENTS.c.payload, _EVENTS.c.attempts)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(statement).all()
        claimed: list[Delivery] = []
        for row in sorted(rows, key=lambda r: r.id):
            if row.attempts > self.max_attempts or row.payload is None:
                log.error("inbound delivery %s given up after %s attempts", row.id, row.attempts)
                self.done(row.id, state="failed")
                continue
            claimed.append(Delivery(row.id, from_payload(row.kind, row.payload), row.attempts))
        return claimed

    def done(self, id: int, *, state: str = "done") -> None:
        """Mark a delivery answered (inside the unit of work that stored the answer, when one
        is open); what was said is not kept past its answer. `AlreadyAnswered` when another
        process answered it first (this one stalled past its lease): the unit rolls back."""
        with writing(self.engine) as conn:
            result = conn.execute(
                update(_EVENTS)
                .where(_EVENTS.c.id == id, _EVENTS.c.state == "pending")
                .values(state=state, payload=None, lease_until=None, done_at=int(self.clock()))
            )
        if result.rowcount != 1:
            raise AlreadyAnswered(id)

    def waiting(self) -> bool:
        """Whether some delivery waits for a worker (a read; nothing is claimed)."""
        waiting = (_EVENTS.c.state == "pending") & (
            _EVENTS.c.lease_until.is_(None) | (_EVENTS.c.lease_until < self.clock())
        )
        with self.engine.connect() as conn:
            return conn.execute(select(_EVENTS.c.id).where(waiting).limit(1)).first() is not None

    def counts(self) -> dict[str, int]:
        """Deliveries per state."""
        query = select(_EVENTS.c.state, func.count()).group_by(_EVENTS.c.state)
        with self.engine.connect() as conn:
            return {state: int(n) for state, n in conn.execute(query)}

    def listener(self) -> Listener:
        """Something to wait on for newly recorded deliveries (see `Listener`)."""
        return Listener(self)


class Listener:
    """Waits until a delivery is recorded. On PostgreSQL a connection LISTENs for the recording
    transactions' notifications (from any process). On SQLite, which has no notifications, a
    recording in this process wakes it at once, and one in another process (a `kpibot serve`
    beside its workers) within `SQLITE_LOOK` seconds: a read of the state index, never a
    claim, so the web process's recordings do not wait behind it. A wait that times out is
    the timed look that catches lapsed leases."""

    SQLITE_LOOK = 0.1

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self._connection: Any = None
        if inbox.postgres:
            import psycopg

            url = inbox.engine.url.set(drivername="postgresql")
            self._connection = psycopg.connect(
                url.render_as_string(hide_password=False), autocommit=True
            )
            self._connection.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> bool:
        """True when woken by a recorded delivery, False after `timeout` seconds."""
        if self._connection is not None:
            for _ in self._connection.notifies(timeout=timeout, stop_after=1):
                return True
            return False
        looks = max(1, round(timeout / self.SQLITE_LOOK))
        for _ in range(looks):
            if self.inbox._recorded.wait(min(timeout, self.SQLITE_LOOK)):
                self.inbox._recorded.clear()
                return True
            if self.inbox.waiting():
                return True
        return False

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


__all__ = [
    "CHANNEL",
    "AlreadyAnswered",
    "Delivery",
    "Inbox",
    "Listener",
    "from_payload",
    "to_payload",
]
