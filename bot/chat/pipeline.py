"""The inbound pipeline: record the delivery (duplicates stop here), acknowledge, then route
and reply through the notifier.

Who answers a recorded delivery (bot/chat/inbox.py):
- by default this process, in a thread when `workers` is given, so the platform's
  acknowledgement never waits for the engine; a background sweep (`start`) answers deliveries
  a crashed process left behind once their lease runs out;
- with `queue=True` (`kpibot serve --workers N`, PostgreSQL) worker processes (`kpibot worker`,
  `run_worker`): the web process only verifies, records and acknowledges.

Either way the answer, its effects and the delivery's "done" commit together (one unit of
work), and the reply is sent once they have.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import Executor
from dataclasses import replace

from sqlalchemy import Engine

from bot.chat.context import ASK, Where
from bot.chat.effects import Result
from bot.chat.inbox import AlreadyAnswered, Delivery, Inbox
from bot.chat.messages import Action, InboundMessage, Reply, Target, displayable
from bot.chat.notifier import Notifier
from bot.chat.router import Routed, Router
from bot.i18n import texts
from kpi_engine.clock import Clock, system_clock
from kpi_engine.restatements import record_posted
from kpi_engine.units import unit_of_work

log = logging.getLogger(__name__)


class _Undone(Exception):
    """A command failed after it may have written: its unit is rolled back, and the answer
    (an apology, a refusal) is stored in a fresh one."""

    def __init__(self, result: Result | None) -> None:
        super().__init__("command undone")
        self.result = result


class Pipeline:
    """Accepts verified messages and button clicks from any adapter."""

    # Deliveries this process holds to answer in its own threads at most; past that (it
    # acknowledges faster than it answers) a delivery waits in the table, unleased, and is
    # claimed from there as the threads finish what they hold: a burst costs a row each, not
    # memory.
    IN_HAND = 64

    def __init__(
        self,
        engine: Engine,
        router: Router,
        notifier: Notifier,
        *,
        workers: Executor | None = None,
        clock: Clock = system_clock,
        queue: bool = False,
        lease: float = 60.0,
    ) -> None:
        self.engine = engine
        self.router = router
        self.notifier = notifier
        self.workers = workers
        self.clock = clock
        self.queue = queue
        self.inbox = Inbox(engine, clock=clock, lease=lease)
        self._stopping = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._left = False  # deliveries wait in the table for room in hand
        self._lock = threading.Lock()
        self._in_hand = 0

    # -- taking deliveries in ---------------------------------------------------------------

    def accept(self, message: InboundMessage) -> bool:
        """Take a message in; False (and nothing else happens) for a duplicate delivery."""
        return self._take(message, message.event_id)

    async def accept_async(self, message: InboundMessage) -> bool:
        """`accept` from a web handler's event loop. A process whose workers answer (`queue`)
        only records the delivery, which needs no thread of the request's own
        (`Inbox.record_async`); otherwise `accept` runs in a webhook thread."""
        if not self.queue:
            # Imported here: the webhooks' module brings FastAPI, which commands do not need.
            from bot.chat.webhooks import off_loop

            return await off_loop(self.accept, message)
        id = await self.inbox.record_async(message, event_id=message.event_id)
        if id is None:
            log.info("duplicate %s delivery %s ignored", message.platform, message.event_id)
            return False
        return True

    def accept_action(self, action: Action) -> bool:
        """Take a button click in, once: a question button asks its question; other buttons go
        to their registered handler, whose answer goes to whoever clicked."""
        if action.action == ASK:
            return self.accept(
                InboundMessage(
                    platform=action.platform,
                    workspace=action.workspace,
                    channel=action.channel,
                    sender=action.sender,
                    text=action.value,
                    event_id=f"action:{action.event_id}",
                    received_at=action.received_at,
                    thread=action.thread,
                    is_direct=action.is_direct,
                    replayable=action.replayable,
                )
            )
        if action.action not in self.router.core.registry.actions:
            log.info("no handler for %s action %r", action.platform, action.action)
            return False
        return self._take(action, f"action:{action.event_id}")

    def _take(self, item: InboundMessage | Action, event_id: str) -> bool:
        held = False
        if not self.queue and self.workers is not None:
            with self._lock:
                held = self._in_hand < self.IN_HAND
                self._in_hand += held
        # Leased to this process from the start when it answers now (workers in other
        # processes, or the sweeper, claim the others).
        claim = not self.queue and (held or self.workers is None)
        try:
            id = self.inbox.record(item, event_id=event_id, claim=claim)
        except BaseException:
            self._release(held)
            raise
        if id is None:
            self._release(held)
            log.info("duplicate %s delivery %s ignored", item.platform, item.event_id)
            return False
        if self.queue:
            return True  # a worker process answers it
        delivery = Delivery(id, item, 1)
        if self.workers is None:
            self.work(delivery)
        elif held:
            self.workers.submit(self._work_held, delivery)
        else:
            self._left = True
            self._refill()  # in case what was in hand finished meanwhile
        return True

    def _work_held(self, delivery: Delivery) -> None:
        try:
            self._work_logged(delivery)
        finally:
            self._release(True)
            self._refill()

    def _refill(self) -> None:
        """Claim deliveries left in the table, as many as there is room for in hand."""
        if not self._left or self.workers is None:
            return
        with self._lock:
            room = self.IN_HAND - self._in_hand
            if room <= 0:
                return
            self._in_hand += room
        claimed: list[Delivery] = []
        try:
            self._left = False  # before claiming: a delivery left after the claim sets it again
            claimed = self.inbox.claim(limit=room)
            if len(claimed) == room:
                self._left = True
        except Exception:  # the next answer to finish tries again
            self._left = True
            log.exception("claiming the deliveries left in the table failed")
        finally:
            with self._lock:
                self._in_hand -= room - len(claimed)
        for n, delivery in enumerate(claimed):
            try:
                self.workers.submit(self._work_held, delivery)
            except RuntimeError:  # shutting down: these are answered after their lease
                with self._lock:
                    self._in_hand -= len(claimed) - n
                log.info("%d deliveries left for after their lease", len(claimed) - n)
                return

    def _release(self, held: bool) -> None:
        if held:
            with self._lock:
                self._in_hand -= 1

    # -- answering --------------------------------------------------------------------------

    def work(self, delivery: Delivery) -> None:
        """Answer one claimed delivery and mark it done."""
        if isinstance(delivery.item, Action):
            self.handle_action(delivery.item, delivery=delivery.id)
        else:
            self.handle(delivery.item, delivery=delivery.id)

    def work_once(self, *, limit: int = 16) -> int:
        """Claim the deliveries nobody is answering and answer them; how many were claimed."""
        claimed = self.inbox.claim(limit=limit)
        for delivery in claimed:
            self._work_logged(delivery)
        return len(claimed)

    def run_worker(self, stop: threading.Event, *, poll: float = 5.0) -> None:
        """A worker's loop until `stop` is set: answer what is waiting, then wait to be woken
        by a recorded delivery — the table is looked at again only then, or after `poll`
        seconds (for leases that ran out). `stop` is noticed within a second."""
        listener = self.inbox.listener()
        try:
            while not stop.is_set():
                try:
                    if self.work_once():
                        continue
                except Exception:  # the database went away for a moment: keep the loop alive
                    log.exception("the chat worker loop failed; trying again")
                    stop.wait(poll)
                    continue
                for _ in range(max(1, round(poll))):
                    if stop.is_set() or listener.wait(min(poll, 1.0)):
                        break
        finally:
            listener.close()

    def start(self) -> None:
        """Answer, in the background, what crashed processes left unanswered (deliveries
        whose lease ran out: looked for now and every lease thereafter). With `queue`, worker
        processes do this instead."""
        if self.queue or self._sweeper is not None:
            return

        def sweep() -> None:
            while not self._stopping.is_set():
                try:
                    while self.work_once() and not self._stopping.is_set():
                        pass
                except Exception:
                    log.exception("answering left-over deliveries failed; trying again")
                self._stopping.wait(self.inbox.lease)

        self._sweeper = threading.Thread(target=sweep, name="inbox-sweeper", daemon=True)
        self._sweeper.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.join()
            self._sweeper = None

    def handle(self, message: InboundMessage, *, delivery: int | None = None) -> Routed:
        """Route a message, store the answer (with a note in the group if it went privately)
        and its effects, mark the `delivery` done — all in one unit of work — then send the
        answer. The text is made displayable (and storable) first, whatever the platform
        sent."""
        message = replace(message, text=displayable(message.text))
        now = int(self.clock())
        try:
            try:
                with unit_of_work(self.engine):
                    routed = self.router.route(message, now=now)
                    if routed.undone:
                        raise _Undone(routed.result)
                    self._answer(message, routed.result, now, delivery)
            except _Undone:  # what the failed command wrote is gone; its answer is stored alone
                with unit_of_work(self.engine):
                    self._answer(message, routed.result, now, delivery)
        except AlreadyAnswered:
            log.info("%s delivery %s was answered elsewhere", message.platform, message.event_id)
        return routed

    def _answer(
        self, message: InboundMessage, result: Result, now: int, delivery: int | None
    ) -> None:
        reply = result.reply
        # One reply per delivery, even if this handling is repeated after a crash.
        key = f"reply:{message.platform}:{message.workspace}:{message.event_id}"
        if reply is not None:
            if message.is_direct:
                reply = replace(reply, private=False)  # a direct chat is private already
            target = Target(
                message.platform,
                message.workspace,
                message.channel,
                user=message.sender if reply.private or message.is_direct else None,
                thread=reply.thread,
                private=reply.private,
            )
            self.notifier.deliver(reply, target, key=key)
            if reply.watch:  # the numbers stated, re-checked later for revisions
                record_posted(self.engine, key, reply.watch, now=now)
            adapter = self.notifier.adapter(message.platform)
            if target.private and not adapter.private_in_place:
                note = Reply(
                    texts(reply.language)("reply.answered_privately"),
                    reply.language,
                    thread=reply.thread,
                )
                self.notifier.deliver(
                    note,
                    Target(
                        message.platform, message.workspace, message.channel, thread=reply.thread
                    ),
                    key=f"{key}:note",
                )
        self.notifier.apply(result.effects)
        if delivery is not None:
            self.inbox.done(delivery)

    def handle_action(self, action: Action, *, delivery: int | None = None) -> Result | None:
        """Run a button's handler as the person who clicked, and answer them privately; the
        answer, its effects and the `delivery`'s "done" commit together, as for a message."""
        router = self.router
        asker = router.asker_of(action.platform, action.sender)
        if asker is None:
            if delivery is not None:
                with contextlib.suppress(AlreadyAnswered):
                    self.inbox.done(delivery)
            return None
        where = Where(
            action.platform,
            action.workspace,
            action.channel,
            action.is_direct,
            action.thread,
            action.replayable,
        )
        language = router.core.organisation.language_of(asker)
        now = int(self.clock())
        context = router.context(asker, where, language, now)
        result: Result | None = None
        try:
            try:
                with unit_of_work(self.engine):  # a click that fails has changed nothing
                    try:
                        result = router.core.registry.actions[action.action](action, context)
                    except Exception as exc:
                        log.exception(
                            "handling %s click %s failed", action.platform, action.event_id
                        )
                        apology = Reply(context.t("error.generic"), language, private=True)
                        raise _Undone(Result(apology)) from exc
                    self._answer_click(action, result, delivery)
            except _Undone as undone:
                result = undone.result
                with unit_of_work(self.engine):
                    self._answer_click(action, result, delivery)
        except AlreadyAnswered:
            log.info("%s click %s was answered elsewhere", action.platform, action.event_id)
            return None
        return result

    def _answer_click(self, action: Action, result: Result | None, delivery: int | None) -> None:
        if result is not None and result.reply is not None:
            adapter = self.notifier.adapter(action.platform)
            if adapter.private_in_place and action.channel and not action.is_direct:
                target = Target(
                    action.platform,
                    action.workspace,
                    action.channel,
                    user=action.sender,
                    thread=action.thread,
                    private=True,
                )
            else:
                target = Target.direct(action.platform, action.workspace, action.sender)
            key = f"action:{action.platform}:{action.workspace}:{action.event_id}"
            self.notifier.deliver(result.reply, target, key=key)
        if result is not None:
            self.notifier.apply(result.effects)
        if delivery is not None:
            self.inbox.done(delivery)

    def _work_logged(self, delivery: Delivery) -> None:
        try:
            self.work(delivery)
        except Exception:  # the worker must survive; the delivery is answered after its lease
            log.exception(
                "answering %s delivery %s failed; it is tried again after its lease",
                delivery.item.platform,
                delivery.item.event_id,
            )
