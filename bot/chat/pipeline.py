"""The inbound pipeline: record the delivery (duplicates stop here), acknowledge, then route
and reply through the notifier — in a worker when one is given, so the platform's
acknowledgement never waits for the engine."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor

from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from bot.chat.commands import ASK
from bot.chat.messages import Action, InboundMessage, Reply, Target
from bot.chat.notifier import Notifier
from bot.chat.router import Router
from kpi_engine.models import InboundEvent

log = logging.getLogger(__name__)
_EVENTS = InboundEvent.__table__  # type: ignore[attr-defined]


def record_delivery(
    engine: Engine,
    platform: str,
    workspace: str,
    event_id: str,
    sender: str,
    channel: str,
    now: int,
) -> bool:
    """Record a platform delivery; False when it was recorded before (a duplicate)."""
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(_EVENTS).values(
                    platform=platform,
                    workspace=workspace,
                    event_id=event_id,
                    sender=sender,
                    channel=channel,
                    received_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


class Pipeline:
    """Accepts verified messages and button clicks from any adapter."""

    def __init__(
        self,
        engine: Engine,
        router: Router,
        notifier: Notifier,
        *,
        workers: Executor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.router = router
        self.notifier = notifier
        self.workers = workers
        self.clock = clock
        # Button actions other than ASK, by action id: handler(action, now) → a reply for the
        # person who clicked, or None (alert buttons, appeal buttons…).
        self.actions: dict[str, Callable[[Action, int], Reply | None]] = {}

    def accept(self, message: InboundMessage) -> bool:
        """Take a message in; False (and nothing else happens) for a duplicate delivery."""
        fresh = record_delivery(
            self.engine,
            message.platform,
            message.workspace,
            message.event_id,
            message.sender,
            message.channel,
            int(self.clock()),
        )
        if not fresh:
            log.info("duplicate %s delivery %s ignored", message.platform, message.event_id)
            return False
        if self.workers is None:
            self.handle(message)
        else:
            self.workers.submit(self._handle_logged, message)
        return True

    def accept_action(self, action: Action) -> bool:
        """Take a button click in, once: a question button asks its question; other buttons go
        to their handler (in a worker), whose answer goes privately to whoever clicked."""
        if action.action in self.actions:
            fresh = record_delivery(
                self.engine,
                action.platform,
                action.workspace,
                f"action:{action.event_id}",
                action.sender,
                action.channel,
                int(self.clock()),
            )
            if not fresh:
                log.info("duplicate %s click %s ignored", action.platform, action.event_id)
                return False
            if self.workers is None:
                self.handle_action(action)
            else:
                self.workers.submit(self._action_logged, action)
            return True
        if action.action != ASK:
            log.info("no handler for %s action %r", action.platform, action.action)
            return False
        message = InboundMessage(
            platform=action.platform,
            workspace=action.workspace,
            channel=action.channel,
            sender=action.sender,
            text=action.value,
            event_id=f"action:{action.event_id}",
            received_at=action.received_at,
            thread=action.thread,
        )
        return self.accept(message)

    def handle(self, message: InboundMessage) -> Reply:
        """Route a message and deliver the reply (with a note in the group if it went privately)."""
        reply = self.router.route(message, now=int(self.clock()))
        adapter = self.notifier.adapter(message.platform)
        target = Target(
            message.platform,
            message.workspace,
            message.channel,
            user=message.sender if reply.private or message.is_direct else None,
            thread=reply.thread,
            private=reply.private and not message.is_direct,
        )
        # One reply per delivery, even if this handling is repeated after a crash.
        key = f"reply:{message.platform}:{message.workspace}:{message.event_id}"
        self.notifier.deliver(reply, target, key=key)
        if target.private and not adapter.private_in_place:
            note = Reply(
                "已私信回复你。" if reply.language == "zh" else "I've answered you privately.",
                reply.language,
                thread=reply.thread,
            )
            self.notifier.deliver(
                note,
                Target(message.platform, message.workspace, message.channel, thread=reply.thread),
                key=f"{key}:note",
            )
        return reply

    def handle_action(self, action: Action) -> Reply | None:
        """Run a button's handler and answer the clicker privately."""
        reply = self.actions[action.action](action, int(self.clock()))
        if reply is None:
            return None
        adapter = self.notifier.adapter(action.platform)
        if adapter.private_in_place and action.channel:
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
        self.notifier.deliver(reply, target, key=key)
        return reply

    def _action_logged(self, action: Action) -> None:
        try:
            self.handle_action(action)
        except Exception:
            log.exception("handling %s click %s failed", action.platform, action.event_id)

    def _handle_logged(self, message: InboundMessage) -> None:
        try:
            self.handle(message)
        except Exception:  # the worker must survive a failed delivery; the outbox retries later
            log.exception(
                "delivering the reply to %s event %s failed", message.platform, message.event_id
            )
