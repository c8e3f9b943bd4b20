"""From a message to a result: who is asking, in which language, what they want (the one
parser), whether they may, and the registered command that answers — or a question back
when the message names something kpibot does not know.

A handler that fails answers with an apology and has changed nothing: its writes are one unit
of work (`kpi_engine.units`), committed when it answers and rolled back when it raises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from bot.chat.context import Context, Where, ask_back
from bot.chat.effects import Result
from bot.chat.messages import InboundMessage, Reply
from bot.chat.parse import Context as ParseContext
from bot.chat.parse import parse
from bot.chat.registry import RANKS, Command
from bot.chat.request import Request
from bot.core import Core
from bot.i18n import texts
from kpi_engine.languages import Language
from kpi_engine.organisation import PersonConfig
from kpi_engine.periods import PeriodError, today
from kpi_engine.scopes import ScopeError
from kpi_engine.units import unit_of_work

log = logging.getLogger(__name__)

# The longest message read (README "Limits"): a longer one is not a question anyone types.
MAX_MESSAGE = 2000
# Intents that change something: refused over a channel whose messages could be replayed.
MUTATING = frozenset({"alert_action", "appeal", "appeal_action", "annotate"})


@dataclass(frozen=True)
class Routed:
    """What came of a message: the result, the request as understood (None when the sender
    is not registered), and who the answer is for."""

    result: Result
    request: Request | None
    visibility: str  # "private" (the asker alone), "direct" (a one-to-one chat) or "group"
    # The command failed (an apology, a period or scope it could not use): whatever it wrote
    # must not stay. The router's own unit of work undoes it; a caller that opened an outer
    # unit (the pipeline) undoes that one.
    undone: bool = False

    def understood(self) -> dict[str, object] | None:
        """What the message was understood as — the contract of `kpibot ask --json` that
        scripts and checks rely on: intent, metric, subject and period as answered (the scope
        and period the handler used; "company", "team:sz-live", "person:li.na"; "2026-11",
        "2026-W48", "2026-11-20", "A..B"), language and visibility; `asked_back` names what
        was not known ("metric", "person", "period"…) when the bot asked back instead."""
        if self.request is None:
            return None
        found = self.request.understood(self.visibility)
        found["subject"] = self.result.scope or found["subject"]
        found["period"] = self.result.period or found["period"]
        if self.request.unknown is not None and self.result.scope is None:
            found["asked_back"] = self.request.unknown.kind
        return found


def allowed(asker: PersonConfig, command: Command) -> bool:
    """Does the asker's role reach the command's permission?"""
    level = 2 if asker.role == "admin" else 1 if asker.role == "manager" else 0
    return level >= RANKS[command.permission]


class Router:
    """Answers messages for one organisation, through the registered commands."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._precedence = {c.intent: n for n, c in enumerate(core.registry.ordered())}

    def asker_of(self, platform: str, sender: str) -> PersonConfig | None:
        """The person behind a platform user id (the console speaks as a person id)."""
        org = self.core.organisation
        if platform == "console":
            return org.people.get(sender)
        return org.person_by_chat_id(platform, sender)

    def context(self, asker: PersonConfig, where: Where, language: Language, now: int) -> Context:
        """A handler's context for `asker`."""
        return Context(self.core, asker, where, language, now)

    def parse(self, text: str, asker: PersonConfig, platform: str, now: int) -> Request:
        """`text` as `asker` means it."""
        org = self.core.organisation
        zone_name = org.teams[asker.team].timezone
        return parse(
            text,
            ParseContext(
                vocabulary=self.core.vocabulary(),
                names=self.core.names(),
                today=today(now, zone_name),
                fallback=org.language_of(asker),
                week_start=org.settings.week_start,
                platform=platform,
                precedence=self._precedence,
            ),
        )

    def route(self, message: InboundMessage, *, now: int) -> Routed:
        """The result for `message` (never raises: failures become an apology)."""
        org = self.core.organisation
        asker = self.asker_of(message.platform, message.sender)
        where = Where(
            message.platform,
            message.workspace,
            message.channel,
            message.is_direct,
            message.thread,
            message.replayable,
        )
        if asker is None:
            from bot.chat.parse import detect_language

            language = detect_language(
                message.text, self.core.vocabulary(), org.settings.default_language
            )
            refusal = unregistered(message, language)
            return Routed(Result(refusal), None, _visibility(refusal, where))
        request = Request("unknown", org.language_of(asker))
        if len(message.text) > MAX_MESSAGE:
            too_long = Reply(
                texts(request.language)("message.too_long", max=MAX_MESSAGE), request.language
            )
            return Routed(Result(too_long), request, _visibility(too_long, where))
        undone = False
        try:
            request = self.parse(message.text, asker, message.platform, now)
            ctx = self.context(asker, where, request.language, now)
            result, undone = self._answer(ctx, request)
        except Exception:
            log.exception("handling %s event %s failed", message.platform, message.event_id)
            result = Result(
                Reply(texts(request.language)("error.generic"), request.language, private=True)
            )
            undone = True
        reply = result.reply
        if reply is not None and reply.thread is None and message.thread is not None:
            result = replace(result, reply=replace(reply, thread=message.thread))
        visibility = _visibility(result.reply, where) if result.reply else "private"
        return Routed(result, request, visibility, undone)

    def _answer(self, ctx: Context, request: Request) -> tuple[Result, bool]:
        """The command's result, and whether it failed (what it wrote is to be undone)."""
        t = ctx.t
        command = self.core.registry.commands.get(request.intent)
        if request.unknown is not None and (command is None or request.unknown.kind == "period"):
            return Result(ask_back(ctx, request.unknown, request)), False
        if command is None:
            help_command = self.core.registry.commands.get("help")
            if help_command is None:
                return Result(Reply(t("unknown.intent"), ctx.language)), False
            return help_command.handler(ctx, request), False
        if request.unknown is not None:
            return Result(ask_back(ctx, request.unknown, request)), False
        if not allowed(ctx.asker, command):
            return Result(ctx.refuse()), False
        if ctx.where.replayable and request.intent in MUTATING:
            return Result(Reply(t("security.replayable"), ctx.language, private=True)), False
        try:
            # Everything the command writes commits when it answers, or not at all.
            with unit_of_work(self.core.engine):
                return command.handler(ctx, request), False
        except PeriodError:
            said = request.period_said or request.period or ""
            return Result(Reply(t("period.impossible", said=said), ctx.language)), True
        except ScopeError:  # a named person or shop the asker cannot see, or none at all
            return Result(ctx.refuse()), True


def _visibility(reply: Reply | None, where: Where) -> str:
    if where.is_direct:
        return "direct"
    return "private" if reply is None or reply.private else "group"


def unregistered(message: InboundMessage, language: Language) -> Reply:
    """What an unknown user is told: who to ask, and the id to give them."""
    who = f"{message.platform}:{message.sender}"
    return Reply(
        texts(language)("access.unregistered", id=who), language, private=not message.is_direct
    )
