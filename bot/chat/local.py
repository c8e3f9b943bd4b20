"""The local console chat: the real pipeline, router and engine, with a terminal as the
platform (`kpibot chat`, `kpibot ask`, and the end of `kpibot demo`)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from adapters.console import ConsoleAdapter
from bot.alerts import ALERT_ACTIONS, AlertService
from bot.appeals import APPEAL_ACTIONS, AppealService
from bot.chat.messages import Action, InboundMessage
from bot.chat.notifier import Notifier
from bot.chat.pipeline import Pipeline
from bot.chat.router import Router
from kpi_engine.figures import Figures
from kpi_engine.organisation import Organisation


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        if person not in organisation.people:
            raise KeyError(person)
        if channel is not None and channel not in organisation.teams:
            raise LookupError(channel)
        self.person = person
        self.channel = f"team:{channel}" if channel else f"dm:{person}"
        self.is_direct = channel is None
        self.adapter = ConsoleAdapter(write)
        figures = Figures(engine, organisation)
        router = Router(organisation, engine, figures)
        notifier = Notifier({"console": self.adapter})
        self.pipeline = Pipeline(engine, router, notifier, clock=clock)
        # Alerts and appeals can be acted on here too, by text or by button number.
        router.alerts = AlertService(
            organisation, engine, figures, router.plans, notifier, ["console"]
        )
        router.appeals = AppealService(organisation, engine, figures, notifier)
        for action in ALERT_ACTIONS:
            self.pipeline.actions[action] = router.alerts.on_action
        for action in APPEAL_ACTIONS:
            self.pipeline.actions[action] = router.appeals.on_action
        self.clock = clock
        # Delivery ids unique across runs: the pipeline records every one.
        self._ids = (f"{time.time_ns()}-{n}" for n in itertools.count())

    def say(self, text: str) -> None:
        """Send `text` as the person; the reply is written out."""
        self.pipeline.accept(
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
