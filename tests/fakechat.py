"""FakeChat: a chat platform that records what the bot sends, and dialogs that read like a
conversation ("li.na says 今天GMV多少 → a private reply with the number")."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine

from bot.chat.adapter import ChatAdapter
from bot.chat.messages import InboundMessage, Reply, Sent, Target
from bot.chat.router import Routed
from bot.compose import Bot, compose
from bot.runtime import Runtime
from config.settings import Settings
from kpi_engine.clock import Clock, fixed_clock
from kpi_engine.organisation import Organisation


@dataclass
class FakeChat:
    """An adapter that keeps every message it is asked to send."""

    platform: str = "slack"
    private_in_place: bool = True
    sent: list[tuple[Reply, Target]] = field(default_factory=list)

    def render(self, reply: Reply, target: Target) -> object:
        return reply

    def send(self, reply: Reply, target: Target, *, key: str | None = None) -> Sent:
        self.sent.append((reply, target))
        return Sent(self.platform, target.channel, str(len(self.sent)), reply)

    def update(self, sent: Sent, reply: Reply) -> Sent:
        self.sent.append((reply, Target(self.platform, "", sent.channel)))
        return sent


def bot_for(
    engine: Engine, organisation: Organisation, adapters: Mapping[str, ChatAdapter], clock: Clock
) -> Bot:
    """The chat side on `adapters`, at `clock`, with no send pacing."""
    runtime = Runtime(Settings(), engine, organisation, clock)
    return compose(runtime, adapters, limits={})


class Dialog:
    """People talking to the bot on one fake platform, at a fixed time."""

    def __init__(
        self,
        engine: Engine,
        organisation: Organisation,
        now: int,
        *,
        platform: str = "slack",
        private_in_place: bool = True,
    ) -> None:
        self.organisation = organisation
        self.chat = FakeChat(platform, private_in_place)
        # The whole chat side as `kpibot serve` builds it: replies go through the outbox
        # (without send pacing: the dialog's clock stands still).
        self.bot = bot_for(engine, organisation, {platform: self.chat}, fixed_clock(now))
        self.router = self.bot.router
        self.pipeline = self.bot.pipeline
        self.now = now
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]  # two dialogs on one database never share ids

    def message(
        self,
        person: str,
        text: str,
        *,
        channel: str | None = None,
        event_id: str | None = None,
        user_id: str | None = None,
    ) -> InboundMessage:
        """What the platform would deliver when `person` says `text`."""
        platform = self.chat.platform
        sender = user_id or getattr(self.organisation.people[person].chat, platform)
        return InboundMessage(
            platform=platform,
            workspace="T0001",
            channel=channel or f"D-{person}",
            sender=sender,
            text=text,
            event_id=event_id or f"Ev{self._prefix}{next(self._ids):06d}",
            received_at=self.now,
            is_direct=channel is None,
        )

    def say(self, person: str, text: str, **options: str | None) -> list[tuple[Reply, Target]]:
        """Everything the bot sent in answer."""
        before = len(self.chat.sent)
        self.pipeline.accept(self.message(person, text, **options))
        self.bot.sender.drain()
        return self.chat.sent[before:]

    def routed(self, person: str, text: str, **options: str | None) -> Routed:
        """What the message came to: the result, the request as understood, the visibility."""
        return self.pipeline.handle(self.message(person, text, **options))

    def answer(self, person: str, text: str, **options: str | None) -> Reply:
        """The one reply to `person` (a group note, if any, is checked separately)."""
        sent = self.say(person, text, **options)
        assert sent, "the bot said nothing"
        return sent[0][0]
