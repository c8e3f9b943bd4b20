"""FakeChat: a chat platform that records what the bot sends, and dialogs that read like a
conversation ("li.na says 今天GMV多少 → a private reply with the number")."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field

from sqlalchemy import Engine

from bot.chat.messages import InboundMessage, Reply, Sent, Target
from bot.chat.notifier import Notifier
from bot.chat.pipeline import Pipeline
from bot.chat.router import Router
from bot.outbox import Outbox, Sender
from kpi_engine.figures import Figures
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
        self.router = Router(organisation, engine, Figures(engine, organisation))
        # Replies go through the outbox, as in `kpibot serve` (without send pacing: the
        # dialog's clock stands still).
        outbox = Outbox(engine, clock=lambda: now)
        sender = Sender(outbox, {platform: self.chat}, limits={})
        notifier = Notifier({platform: self.chat}, outbox=outbox, sender=sender)
        self.pipeline = Pipeline(engine, self.router, notifier, clock=lambda: now)
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
        return self.chat.sent[before:]

    def answer(self, person: str, text: str, **options: str | None) -> Reply:
        """The one reply to `person` (a group note, if any, is checked separately)."""
        sent = self.say(person, text, **options)
        assert sent, "the bot said nothing"
        return sent[0][0]
