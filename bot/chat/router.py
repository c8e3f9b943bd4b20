"""From a message to a reply: who is asking, in which language, what they want, and the
command that answers — under their permissions."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bot.chat.access import Access
from bot.chat.commands import (
    COMMANDS,
    Context,
    allowed,
    command_for,
    error_reply,
    period_error_reply,
    refuse,
    unknown_reply,
    unregistered_reply,
)
from bot.chat.intents import Aliases, Names, Request, language_of, parse
from bot.chat.messages import InboundMessage, Reply
from kpi_engine.figures import Figures
from kpi_engine.organisation import Organisation
from kpi_engine.periods import PeriodError, today
from kpi_engine.scopes import ScopeError
from kpi_engine.targets import Plans

if TYPE_CHECKING:
    from bot.alerts import AlertService
    from bot.appeals import AppealService

log = logging.getLogger(__name__)

# Which intent wins when a message has keywords of several: specific before general.
PRECEDENCE = (
    # Verbs with a number first ("确认 42", "接受 7"); their handlers hand an ordinary question
    # that merely contains the verb ("帮我确认一下今天GMV") on to the progress answer.
    "appeal_action",
    "alert_action",
    "appeal",
    "ping",
    "help",
    "annotate",
    "annotations",
    "alerts",
    "why",
    "score",
    "ranking",
    "compare",
    "breakdown",
    "progress",
)


class Router:
    """Answers messages for one organisation."""

    def __init__(self, organisation: Organisation, engine: Engine, figures: Figures) -> None:
        self.organisation = organisation
        self.engine = engine
        self.figures = figures
        self.plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
        self.access = Access(organisation)
        self.alerts: AlertService | None = None  # set by the chat service
        self.appeals: AppealService | None = None
        by_intent = {c.intent: c for c in COMMANDS}
        self.aliases: Aliases = [
            (intent, by_intent[intent].aliases_zh, by_intent[intent].aliases_en)
            for intent in PRECEDENCE
            if intent in by_intent
        ]
        people: dict[str, str] = {}
        for person in organisation.people.values():
            people[person.id.lower()] = person.id
            people[person.name.lower()] = person.id
        shops: dict[str, str] = {}
        for shop in organisation.shops.values():
            shops[shop.id.lower()] = shop.id
            shops[shop.name.lower()] = shop.id
        self._people, self._shops = people, shops
        self._mentions: dict[str, dict[str, str]] = {}

    def names(self, platform: str) -> Names:
        """People and shops by name or id, and this platform's user ids of people."""
        if platform not in self._mentions:
            found = {}
            for person in self.organisation.people.values():
                user = getattr(person.chat, platform, None)
                if user:
                    found[user] = person.id
            self._mentions[platform] = found
        return Names(self._people, self._shops, self._mentions[platform])

    def route(self, message: InboundMessage, *, now: int) -> Reply:
        """The reply to `message` (never raises: failures become a friendly reply)."""
        org = self.organisation
        asker = (
            org.people.get(message.sender)  # the local console speaks as a person id
            if message.platform == "console"
            else org.person_by_chat_id(message.platform, message.sender)
        )
        if asker is None:
            return unregistered_reply(
                message, language_of(message.text, org.settings.default_language)
            )
        language = language_of(message.text, org.language_of(asker))
        try:
            zone_name = org.teams[asker.team].timezone
            request = parse(
                message.text,
                aliases=self.aliases,
                catalogue=org.catalogue,
                names=self.names(message.platform),
                today=today(now, zone_name),
                fallback=language,
            )
            context = Context(
                org,
                self.engine,
                self.figures,
                self.plans,
                self.access,
                asker,
                message,
                language,
                now,
                self.alerts,
                self.appeals,
            )
            return self._answer(context, request)
        except Exception:
            log.exception("handling %s event %s failed", message.platform, message.event_id)
            return error_reply(language)

    def _answer(self, context: Context, request: Request) -> Reply:
        if request.intent == "unknown":
            return unknown_reply(context, request)
        command = command_for(request.intent)
        if command is None:
            return unknown_reply(context, request)
        if not allowed(context.asker, command.permission):
            return refuse(context)
        try:
            reply = command.handler(context, request)
        except PeriodError as exc:
            return period_error_reply(context, exc)
        except ScopeError:  # a named person or shop the asker cannot see, or none at all
            return refuse(context)
        if reply.thread is None and context.message.thread is not None:
            reply = _in_thread(reply, context.message.thread)
        return reply


def _in_thread(reply: Reply, thread: str) -> Reply:
    return replace(reply, thread=thread)
