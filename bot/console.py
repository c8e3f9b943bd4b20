"""The local console chat: the real pipeline, router and engine, with a terminal as the
platform (`kpibot chat`, `kpibot ask`, and the end of `kpibot demo`)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from adapters.console import ConsoleAdapter
from bot.chat.messages import Action, InboundMessage
from bot.chat.router import Routed
from bot.runtime import Runtime
from config.settings import Settings
from kpi_engine.clock import Clock, system_clock
from kpi_engine.organisation import Organisation

if TYPE_CHECKING:
    from bot.compose import Bot


class ConsoleChat:
    """One person talking to the bot in a terminal, privately or in their team's channel."""

    def __init__(
        self,
        organisation: Organisation,
        engine: Engine,
        person: str,
        *,
        channel: str | None = None,
        write: Callable[[str], None] = print,
        clock: Clock = system_clock,
        settings: Settings | None = None,
    ) -> None:
        from bot.compose import compose

        if person not in organisation.people:
            raise KeyError(person)
        if channel is not None and channel not in organisation.teams:
            raise LookupError(channel)
        self.person = person
        self.channel = f"team:{channel}" if channel else f"dm:{person}"
        self.is_direct = channel is None
        self.adapter = ConsoleAdapter(write)
        runtime = Runtime(settings or Settings(), engine, organisation, clock)
        self.bot: Bot = compose(runtime, {"console": self.adapter})
        self.pipeline = self.bot.pipeline
        self.clock = clock
        self.last: Routed | None = None  # what the last message came to (`kpibot ask --json`)
        # Delivery ids unique across runs: the pipeline records every one.
        run = uuid.uuid4().hex
        self._ids = (f"{run}-{n}" for n in itertools.count())

    def say(self, text: str) -> Routed:
        """Send `text` as the person; the reply is written out, and what it came to returned."""
        self.last = self.pipeline.handle(
            InboundMessage(
                platform="console",
                workspace="",
                channel=self.channel,
                sender=self.person,
                text=text,
                event_id=next(self._ids),
                received_at=int(self.clock()),
                is_direct=self.is_direct,
            )
        )
        while self.bot.sender.run_once():  # what the answer set in motion (cards, threads)
            pass
        return self.last

    def press(self, number: int) -> bool:
        """Press button `number` of the last reply that had buttons; False when there is none."""
        for reply, target in reversed(self.adapter.sent):
            if reply.buttons:
                if not 1 <= number <= len(reply.buttons):
                    return False
                button = reply.buttons[number - 1]
                return self.pipeline.accept_action(
                    Action(
                        platform="console",
                        workspace="",
                        action=button.action,
                        value=button.value,
                        sender=self.person,
                        channel=target.channel,
                        message_id="",
                        event_id=next(self._ids),
                        received_at=int(self.clock()),
                    )
                )
        return False

    def run(self, lines: Iterable[str], prompt: Callable[[], None] = lambda: None) -> None:
        """Answer each line until one is empty, `quit` or `exit`; a number presses a button."""
        prompt()
        for raw in lines:
            line = raw.strip()
            if line.lower() in ("", "quit", "exit", "q", "退出"):
                return
            if line.isdigit() and self.press(int(line)):
                prompt()
                continue
            self.say(line)
            prompt()
