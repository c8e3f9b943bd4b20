"""The durable outbox: every outbound message is a row before it is a platform call.

`Outbox` is the table's repository (put, claim, settle, list, retry, drop). `Sender` delivers
claimed rows through the platforms' adapters within their send limits (DESIGN.md §4): a row
whose target is busy waits its turn without holding a claim, a retry-later failure comes back
with exponential backoff and jitter (or after the platform's Retry-After), and a permanent
failure is dead-lettered with its reason and a notice to the admins.

Crash safety: a claimed row carries a lease; if its process dies mid-delivery the lease runs
out and another sender (or the restarted one) delivers it again. The platform sees the same
idempotency key both times, so where it deduplicates sends (Feishu's `uuid`) the message
appears once. Where it cannot (Slack's chat.postMessage has no idempotency key), the message id
is recorded in the same statement that marks the row sent, and the remaining window — between
the platform accepting the message and that commit — is the only place a duplicate can come
from. Several replicas on PostgreSQL claim rows with `FOR UPDATE SKIP LOCKED`, so no row is
delivered by two of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.chat.adapter import (
    AuthRevoked,
    ChatAdapter,
    ChatError,
    RateLimited,
    TargetNotFound,
    Unsupported,
)
from bot.chat.messages import Reply, Sent, Target, reply_from_json, to_json
from bot.i18n import texts
from kpi_engine.audit import record
from kpi_engine.clock import Clock, system_clock
from kpi_engine.languages import Language
from kpi_engine.models import OutboxMessage
from kpi_engine.units import reading, writing

log = logging.getLogger(__name__)
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]

STATES = ("pending", "sending", "sent", "dead", "dropped")
# Failures no retry can fix: the row is dead-lettered at once.
PERMANENT: tuple[type[ChatError], ...] = (AuthRevoked, TargetNotFound, Unsupported)


@dataclass(frozen=True)
class Limit:
    """A platform's send limits (DESIGN.md §4): messages per second per target and per app."""

    per_target: float | None
    per_app: float | None = None
    burst: int = 1  # messages a quiet target may take at once
    # The sender paces a little under the platform's rate: the platform counts arrivals in its
    # window, and network jitter bunches sends spaced exactly at the limit into 429s.
    headroom: float = 0.96


# Slack: about one message a second per channel. Feishu: 5/s per group or user, 50/s per app.
# DingTalk's app robot (its OpenAPI): 40 calls a second per API per organisation (then 90019),
# paced at half that; a custom group robot (a team channel that is its webhook URL, the key
# "dingtalk:webhook") is locked for 10 minutes after 20 messages in a minute.
LIMITS: dict[str, Limit] = {
    "slack": Limit(per_target=1.0),
    "feishu": Limit(per_target=5.0, per_app=50.0),
    "dingtalk": Limit(per_target=None, per_app=20.0),
    "dingtalk:webhook": Limit(per_target=20 / 60),
    "console": Limit(per_target=None),
}


def limit_for(limits: Mapping[str, Limit], target: Target) -> Limit:
    """The limits a target's sends keep to: its platform's, or those of the platform's
    webhook robots when the target is a webhook URL."""
    if target.channel.startswith("https://") or target.channel.startswith("http://"):
        found = limits.get(f"{target.platform}:webhook")
        if found is not None:
            return found
    return limits.get(target.platform, Limit(per_target=None))


@dataclass(frozen=True)
class Pending:
    """A claimed outbox row, ready to deliver."""

    id: int
    key: str
    kind: str
    target: Target
    reply: Reply
    attempts: int
    edits: str | None = None  # an edit: the key of the message it replaces
    thread_of: str | None = None  # in the thread of the message sent under this key


@dataclass(frozen=True)
class Entry:
    """A row as `kpibot outbox` shows it."""

    id: int
    key: str
    kind: str
    platform: str
    channel: str
    state: str
    attempts: int
    due_at: float
    error: str | None
    created_at: int
    text: str


def platform_key(key: str) -> str:
    """The idempotency key as platforms take it: short, stable, unique per outbox key."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class Outbox:
    """The outbox table's repository."""

    def __init__(self, engine: Engine, *, clock: Clock = system_clock) -> None:
        self.engine = engine
        self.clock = clock

    def put(
        self,
        reply: Reply,
        target: Target,
        *,
        key: str | None = None,
        kind: str = "reply",
        due_at: float | None = None,
        thread_of: str | None = None,
        edits: str | None = None,
    ) -> int | None:
        """Store a message to send; None when a message with this key was stored before.
        `thread_of`: post it in the thread of the message stored under that key."""
        now = self.clock()
        values = {
            "key": key or f"{kind}:{uuid.uuid4().hex}",
            "kind": kind,
            "platform": target.platform,
            "workspace": target.workspace,
            "channel": target.channel,
            "user": target.user,
            "thread": target.thread,
            "private": target.private,
            "payload": json.dumps(to_json(reply), ensure_ascii=False),
            "state": "pending",
            "attempts": 0,
            "due_at": now if due_at is None else due_at,
            "created_at": int(now),
            "thread_of": thread_of,
            "edits": edits,
        }
        # Inside a unit of work (a chat command) the row commits with what the command wrote.
        with writing(self.engine) as conn:
            dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            statement = (
                dialect_insert(_OUTBOX)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(_OUTBOX.c.id)
            )
            return conn.execute(statement).scalar()

    def claim(
        self,
        *,
        limit: int = 100,
        lease: float = 60.0,
        ids: Iterable[int] | None = None,
        platforms: Iterable[str] | None = None,
    ) -> list[Pending]:
        """Take due rows (or the given ones, if due) for delivery, each for `lease` seconds;
        only rows for `platforms` when given (a process delivers what it has adapters for)."""
        now = self.clock()
        due = ((_OUTBOX.c.state == "pending") & (_OUTBOX.c.due_at <= now)) | (
            (_OUTBOX.c.state == "sending") & (_OUTBOX.c.lease_until < now)
        )
        chosen = select(_OUTBOX.c.id).where(due)
        if ids is not None:
            chosen = chosen.where(_OUTBOX.c.id.in_(list(ids)))
        if platforms is not None:
            chosen = chosen.where(_OUTBOX.c.platform.in_(list(platforms)))
        chosen = chosen.order_by(_OUTBOX.c.due_at, _OUTBOX.c.id).limit(limit)
        chosen = chosen.with_for_update(skip_locked=True)  # SQLite: its write lock serialises
        statement = (
            update(_OUTBOX)
            .where(_OUTBOX.c.id.in_(chosen.scalar_subquery()))
            .values(state="sending", lease_until=now + lease, attempts=_OUTBOX.c.attempts + 1)
            .returning(_OUTBOX)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(statement).mappings().all()
        claimed = [
            Pending(
                id=row["id"],
                key=row["key"],
                kind=row["kind"],
                target=Target(
                    row["platform"],
                    row["workspace"],
                    row["channel"],
                    user=row["user"],
                    thread=row["thread"],
                    private=row["private"],
                ),
                reply=reply_from_json(json.loads(row["payload"])),
                attempts=row["attempts"],
                edits=row["edits"],
                thread_of=row["thread_of"],
            )
            for row in rows
        ]
        return sorted(claimed, key=lambda p: p.id)

    def _settle(self, id: int, **values: Any) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id == id, _OUTBOX.c.state == "sending")
                .values(lease_until=None, **values)
            )
        return result.rowcount == 1

    def done(self, id: int, sent: Sent) -> bool:
        """Mark a delivered row sent, with the platform's message id (one statement); a direct
        message also keeps the chat the platform put it in, for later updates."""
        values: dict[str, Any] = {"channel": sent.channel} if sent.channel else {}
        return self._settle(
            id,
            state="sent",
            message_id=sent.message_id,
            sent_at=int(self.clock()),
            error=None,
            **values,
        )

    def later(self, id: int, due_at: float, error: str | None, *, attempt: bool = True) -> bool:
        """Give a claimed row back, due again at `due_at` (not counted as an attempt if not
        `attempt`: it waited for its turn, it did not fail)."""
        values: dict[str, Any] = {"state": "pending", "due_at": due_at, "error": error}
        if not attempt:
            values["attempts"] = _OUTBOX.c.attempts - 1
        return self._settle(id, **values)

    def dead(self, id: int, error: str) -> bool:
        """Dead-letter a claimed row: it will not be tried again unless an admin says so."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id == id, _OUTBOX.c.state == "sending")
                .values(lease_until=None, state="dead", error=error)
            )
            if result.rowcount == 1:
                record(
                    conn, "outbox", str(id), "kpibot", "dead", at=int(self.clock()), detail=error
                )
        return result.rowcount == 1

    def retry(self, id: int, *, actor: str) -> bool:
        """An admin's retry of a dead or failing row: due now, attempts counted afresh."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id == id, _OUTBOX.c.state.in_(("dead", "pending", "dropped")))
                .values(state="pending", due_at=self.clock(), attempts=0, error=None)
            )
            if result.rowcount == 1:
                record(conn, "outbox", str(id), actor, "retried", at=int(self.clock()))
        return result.rowcount == 1

    def drop(self, id: int, *, actor: str) -> bool:
        """An admin gives up on a row that is not sent."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id == id, _OUTBOX.c.state.in_(("dead", "pending")))
                .values(state="dropped")
            )
            if result.rowcount == 1:
                record(conn, "outbox", str(id), actor, "dropped", at=int(self.clock()))
        return result.rowcount == 1

    def counts(self, platforms: Iterable[str] | None = None) -> dict[str, int]:
        """Rows per state (of `platforms` only, when given)."""
        query = select(_OUTBOX.c.state, func.count()).group_by(_OUTBOX.c.state)
        if platforms is not None:
            query = query.where(_OUTBOX.c.platform.in_(list(platforms)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {state: int(n) for state, n in rows}

    def entries(self, states: Iterable[str], *, limit: int = 50) -> list[Entry]:
        """The rows in `states`, oldest first."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(_OUTBOX)
                    .where(_OUTBOX.c.state.in_(list(states)))
                    .order_by(_OUTBOX.c.id)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [
            Entry(
                id=r["id"],
                key=r["key"],
                kind=r["kind"],
                platform=r["platform"],
                channel=r["channel"],
                state=r["state"],
                attempts=r["attempts"],
                due_at=r["due_at"],
                error=r["error"],
                created_at=r["created_at"],
                text=json.loads(r["payload"])["text"],
            )
            for r in rows
        ]

    def put_edit(self, original: str, reply: Reply, *, key: str) -> int | None:
        """Store an edit of the message stored under `original`, delivered like any message
        (after the original is sent); None when there is no such message, or the edit was
        stored before."""
        with reading(self.engine) as conn:
            row = conn.execute(select(_OUTBOX).where(_OUTBOX.c.key == original)).mappings().first()
        if row is None:
            return None
        target = Target(
            row["platform"],
            row["workspace"],
            row["channel"],
            user=row["user"],
            private=row["private"],
        )
        return self.put(reply, target, key=key, kind="edit", edits=original)

    def state_of(self, key: str) -> tuple[str, Sent | None] | None:
        """The state of the message stored under `key`, and where it was sent when it was."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    _OUTBOX.c.state, _OUTBOX.c.platform, _OUTBOX.c.channel, _OUTBOX.c.message_id
                ).where(_OUTBOX.c.key == key)
            ).one_or_none()
        if row is None:
            return None
        sent = (
            Sent(row.platform, row.channel, row.message_id or "") if row.state == "sent" else None
        )
        return row.state, sent

    def newer_edit(self, original: str, id: int) -> bool:
        """Is there an edit of `original` stored after row `id` (which it supersedes)?"""
        with self.engine.connect() as conn:
            newest = conn.execute(
                select(func.max(_OUTBOX.c.id)).where(_OUTBOX.c.edits == original)
            ).scalar()
        return newest is not None and newest > id

    def drop_claimed(self, id: int, reason: str) -> bool:
        """Give up on a claimed row that has nothing left to do (no admin notice)."""
        return self._settle(id, state="dropped", error=reason)

    def sent_message(self, key: str) -> Sent | None:
        """The delivered message stored under `key` (to update or reference it later)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_OUTBOX.c.platform, _OUTBOX.c.channel, _OUTBOX.c.message_id).where(
                    _OUTBOX.c.key == key, _OUTBOX.c.state == "sent"
                )
            ).one_or_none()
        return None if row is None else Sent(row.platform, row.channel, row.message_id or "")


class Pacer:
    """Send slots per key (a target, a whole app) at a steady rate: each caller is told how
    long to wait for its slot, so concurrent senders are spread over time, not bunched.

    Bounded: a key whose next free slot has passed constrains nothing — booking on it gives
    the same wait as on a key never seen — so it is forgotten. Whenever the keys kept have
    doubled since the last sweep, the passed ones are dropped; what remains are the keys
    booked into the future, so memory follows the sends in flight, not every chat ever
    served, and no chat can send faster for having been forgotten."""

    SWEEP_AT = 1024  # keys kept before the first sweep

    def __init__(self, sweep_at: int = SWEEP_AT) -> None:
        self._free_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._min_sweep = sweep_at
        self._sweep_at = sweep_at

    def __len__(self) -> int:
        return len(self._free_at)

    def _forget_passed(self, now: float) -> None:
        if len(self._free_at) < self._sweep_at:
            return
        self._free_at = {key: at for key, at in self._free_at.items() if at > now}
        self._sweep_at = max(self._min_sweep, 2 * len(self._free_at))

    def reserve(self, keys: Mapping[str, tuple[float, int]], now: float) -> float:
        """Book the next slot free on every key (rate per second, burst); the wait in seconds."""
        with self._lock:
            self._forget_passed(now)
            start = now
            for key, (rate, burst) in keys.items():
                start = max(start, self._free_at.get(key, now) - (burst - 1) / rate)
            for key, (rate, _burst) in keys.items():
                self._free_at[key] = max(self._free_at.get(key, now), start) + 1 / rate
            return start - now

    def release(self, keys: Iterable[str], rates: Mapping[str, float]) -> None:
        """Give back a booked slot that was not used."""
        with self._lock:
            for key in keys:
                if key in self._free_at:
                    self._free_at[key] -= 1 / rates[key]

    def hold(self, key: str, until: float) -> None:
        """Nothing more to `key` before `until` (the platform said to wait)."""
        with self._lock:
            self._free_at[key] = max(self._free_at.get(key, until), until)


class Sender:
    """Delivers outbox rows through the adapters, in a background loop or on demand."""

    def __init__(
        self,
        outbox: Outbox,
        adapters: Mapping[str, ChatAdapter],
        *,
        limits: Mapping[str, Limit] = LIMITS,
        threads: int = 8,
        lease: float = 60.0,
        max_attempts: int = 8,
        max_wait: float = 5.0,
        backoff: tuple[float, float] = (2.0, 600.0),
        on_dead: Callable[[Pending, str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.outbox = outbox
        self.adapters = dict(adapters)
        self.limits = dict(limits)
        self.lease = lease
        self.max_attempts = max_attempts
        self.max_wait = max_wait  # a row whose slot is further off is given back until then
        self.backoff = backoff
        self.on_dead = on_dead
        self.sleep = sleep
        self.pacer = Pacer()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="outbox")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._loop: threading.Thread | None = None

    # -- delivery ---------------------------------------------------------------------------

    def _keys(self, target: Target) -> dict[str, tuple[float, int]]:
        limit = limit_for(self.limits, target)
        keys: dict[str, tuple[float, int]] = {}
        if limit.per_target:
            who = target.user if target.private and target.user else target.channel
            rate = limit.per_target * limit.headroom
            keys[f"{target.platform}:{target.workspace}:{who}"] = (rate, limit.burst)
        if limit.per_app:
            keys[f"{target.platform}:{target.workspace}"] = (
                limit.per_app * limit.headroom,
                limit.burst,
            )
        return keys

    def _refer(self, pending: Pending) -> Pending | Sent | None:
        """Resolve what a row refers to: for an edit, the sent message it replaces; for a
        thread message, its thread. None when the row was settled here (waiting for the
        message it refers to, or with nothing left to do)."""
        if pending.edits is not None:
            found = self.outbox.state_of(pending.edits)
            if self.outbox.newer_edit(pending.edits, pending.id):
                self.outbox.drop_claimed(pending.id, "superseded by a newer edit")
                return None
            if found is None or found[0] in ("dead", "dropped"):
                self.outbox.drop_claimed(pending.id, "the message it edits was never sent")
                return None
            if found[1] is None:  # not sent yet: the edit waits for it
                self.outbox.later(pending.id, self.outbox.clock() + 2.0, None, attempt=False)
                return None
            return found[1]
        if pending.thread_of is not None:
            found = self.outbox.state_of(pending.thread_of)
            if found is not None and found[0] in ("pending", "sending"):
                self.outbox.later(pending.id, self.outbox.clock() + 2.0, None, attempt=False)
                return None
            if found is not None and found[1] is not None and found[1].message_id:
                parent = found[1]
                return replace(
                    pending,
                    target=replace(
                        pending.target,
                        channel=pending.target.channel or parent.channel,
                        thread=parent.message_id,
                    ),
                )
        return pending

    def deliver(self, pending: Pending) -> Sent | None:
        """One attempt at one claimed row; the row is settled whatever happens."""
        adapter = self.adapters.get(pending.target.platform)
        if adapter is None:
            self._dead(pending, f"no {pending.target.platform} adapter is configured")
            return None
        referred = self._refer(pending)
        if referred is None:
            return None
        if isinstance(referred, Pending):
            pending = referred
        keys = self._keys(pending.target)
        wait = self.pacer.reserve(keys, self.outbox.clock())
        if wait > self.max_wait:  # its turn is far off: do not hold the claim meanwhile
            self.pacer.release(keys, {k: rate for k, (rate, _) in keys.items()})
            self.outbox.later(pending.id, self.outbox.clock() + wait, None, attempt=False)
            return None
        if wait > 0:
            self.sleep(wait)
        try:
            if isinstance(referred, Sent):
                try:
                    sent = adapter.update(referred, pending.reply)
                except Unsupported as exc:  # this platform cannot edit: nothing to do
                    self.outbox.drop_claimed(pending.id, f"not editable: {exc}")
                    return None
            else:
                sent = adapter.send(pending.reply, pending.target, key=platform_key(pending.key))
        except RateLimited as exc:
            until = self.outbox.clock() + exc.retry_after
            for key in keys:
                self.pacer.hold(key, until)
            log.warning("outbox %s: rate limited, again in %.1f s", pending.id, exc.retry_after)
            self.outbox.later(pending.id, until, f"rate limited: {exc}", attempt=False)
        except PERMANENT as exc:
            self._dead(pending, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # retry later: the platform failed, or the network did
            reason = f"{type(exc).__name__}: {exc}"
            if pending.attempts >= self.max_attempts:
                self._dead(pending, f"gave up after {pending.attempts} attempts; {reason}")
            else:
                base, cap = self.backoff
                delay = min(cap, base * 2 ** (pending.attempts - 1)) * random.uniform(0.5, 1.0)
                log.warning("outbox %s: %s; again in %.1f s", pending.id, reason, delay)
                self.outbox.later(pending.id, self.outbox.clock() + delay, reason)
        else:
            self.outbox.done(pending.id, sent)
            return sent
        return None

    def _dead(self, pending: Pending, reason: str) -> None:
        log.error("outbox %s (%s) dead-lettered: %s", pending.id, pending.key, reason)
        self.outbox.dead(pending.id, reason)
        if self.on_dead is not None:
            try:
                self.on_dead(pending, reason)
            except Exception:
                log.exception("the dead-letter notice for outbox %s failed", pending.id)

    def deliver_now(self, id: int) -> Sent | None:
        """Deliver one stored row at once, in the caller's thread (a chat reply)."""
        claimed = self.outbox.claim(ids=[id], limit=1, lease=self.lease)
        return self.deliver(claimed[0]) if claimed else None

    def run_once(self, *, batch: int = 200) -> int:
        """Claim the rows due now and deliver them concurrently; how many were claimed."""
        claimed = self.outbox.claim(limit=batch, lease=self.lease, platforms=self.adapters)
        for future in [self._pool.submit(self.deliver, p) for p in claimed]:
            future.result()
        return len(claimed)

    def drain(self, *, until: Callable[[], bool] | None = None, poll: float = 0.05) -> None:
        """Deliver until nothing is pending (or `until()` says stop); for the CLI and tests."""
        while until is None or not until():
            if self.run_once():
                continue
            counts = self.outbox.counts(self.adapters)
            if not counts.get("pending") and not counts.get("sending"):
                return
            self.sleep(poll)

    # -- background loop --------------------------------------------------------------------

    def wake(self) -> None:
        """Something was put in the outbox: look now rather than at the next poll."""
        self._wake.set()

    def start(self, *, poll: float = 1.0) -> None:
        """Run the delivery loop in a thread until `stop`."""
        if self._loop is not None:
            return

        def loop() -> None:
            while not self._stopping.is_set():
                try:
                    if self.run_once():
                        continue
                except Exception:  # the database went away for a moment: keep the loop alive
                    log.exception("the outbox sender loop failed; trying again")
                self._wake.wait(poll)
                self._wake.clear()

        self._loop = threading.Thread(target=loop, name="outbox-sender", daemon=True)
        self._loop.start()

    def stop(self) -> None:
        """Stop the loop (a row mid-delivery finishes) and the delivery threads."""
        self._stopping.set()
        self._wake.set()
        if self._loop is not None:
            self._loop.join()
        self._pool.shutdown(wait=True)


def notice_admins(
    outbox: Outbox, admins: Iterable[tuple[Target, Language]]
) -> Callable[[Pending, str], None]:
    """An `on_dead` that tells each admin (target, language) which message died and why.

    A notice that itself dies is not noticed again."""
    chosen = list(admins)

    def on_dead(pending: Pending, reason: str) -> None:
        if pending.kind == "notice":
            return
        for target, language in chosen:
            said = texts(language)(
                "ops.dead_letter",
                id=pending.id,
                platform=pending.target.platform,
                channel=pending.target.channel,
                reason=reason,
            )
            outbox.put(
                Reply(said, language),
                target,
                key=f"dead:{pending.id}:{target.platform}:{target.user}",
                kind="notice",
            )

    return on_dead


__all__ = [
    "LIMITS",
    "STATES",
    "Entry",
    "Limit",
    "Outbox",
    "Pacer",
    "Pending",
    "Sender",
    "notice_admins",
    "platform_key",
]
