"""The inbound pipeline: record the delivery (duplicates stop here), acknowledge, then route
and reply through the notifier — in a worker when one is given, so the platform's
acknowledgement never waits for the engine."""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import replace

from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from bot.chat.context import ASK, Where
from bot.chat.effects import Result
from bot.chat.messages import Action, InboundMessage, Reply, Target, displayable
from bot.chat.notifier import Notifier
from bot.chat.router import Routed, Router
from bot.i18n import texts
from kpi_engine.clock import Clock, system_clock
from kpi_engine.models import InboundEvent
from kpi_engine.restatements import record_posted
from kpi_engine.units import unit_of_work

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
        clock: Clock = system_clock,
    ) -> None:
        self.engine = engine
        self.router = router
        self.notifier = notifier
        self.workers = workers
        self.clock = clock

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
        to their registered handler (in a worker), whose answer goes to whoever clicked."""
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

    def handle(self, message: InboundMessage) -> Routed:
        """Route a message, deliver the answer (with a note in the group if it went privately)
        and carry out its effects. The text is made displayable (and storable) first, whatever
        the platform sent."""
        message = replace(message, text=displayable(message.text))
        routed = self.router.route(message, now=int(self.clock()))
        reply = routed.result.reply
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
                record_posted(self.engine, key, reply.watch, now=int(self.clock()))
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
        self.notifier.apply(routed.result.effects)
        return routed

    def handle_action(self, action: Action) -> Result | None:
        """Run a button's handler as the person who clicked, and answer them privately."""
        router = self.router
        asker = router.asker_of(action.platform, action.sender)
        if asker is None:
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
        try:
            with unit_of_work(self.engine):  # a click that fails has changed nothing
                result = router.core.registry.actions[action.action](action, context)
        except Exception:
            log.exception("handling %s click %s failed", action.platform, action.event_id)
            result = Result(Reply(context.t("error.generic"), language, private=True))
        if result is None:
            return None
        if result.reply is not None:
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
        self.notifier.apply(result.effects)
        return result

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
