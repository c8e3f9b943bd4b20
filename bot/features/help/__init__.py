"""Help, generated from the registry: a short list with an example per command ("help ranking"
shows one command's usage), "did you mean" for text nothing matched (only commands that are
plausible), and ping."""

from __future__ import annotations

from bot.chat.context import ASK, Context
from bot.chat.effects import Result
from bot.chat.messages import Button, Reply
from bot.chat.registry import Command, Feature, Registry
from bot.chat.request import Request
from bot.chat.router import allowed
from bot.chat.vocabulary import synonyms
from bot.core import Core
from bot.i18n import has_text

# Text longer than this is not looked at for "did you mean" (it costs time and finds nothing).
_SUGGEST_FROM = 200


def _shown(ctx: Context) -> list[Command]:
    """The commands the asker may use that help lists, in the registry's order."""
    return [
        c
        for c in ctx.core.registry.ordered()
        if c.in_help and allowed(ctx.asker, c) and has_text(f"help.{c.intent}.summary")
    ]


def help_reply(ctx: Context, first: str = "", *, only: str | None = None) -> Reply:
    """The list of commands with an example each (or one command's usage)."""
    t = ctx.t
    commands = _shown(ctx)
    if only is not None:
        commands = [c for c in commands if c.intent == only]
    lines = [first] if first else []
    lines.append(t("help.headline"))
    buttons: list[Button] = []
    for command in commands:
        example = t(f"help.{command.intent}.example")
        lines.append(t("help.line", summary=t(f"help.{command.intent}.summary"), example=example))
        if len(buttons) < 4 and command.intent in ("progress", "ranking", "why", "score"):
            buttons.append(Button(example, ASK, example))
    if only is None:
        lines.append(t("help.more"))
    return Reply("\n".join(lines), ctx.language, headline=first or None, buttons=tuple(buttons))


def _plausible(ctx: Context, request: Request) -> list[str]:
    """Commands whose words are close to what was said (an example of each)."""
    from rapidfuzz import fuzz, process

    said = request.words[:_SUGGEST_FROM]
    if len(said) < 2:
        return []
    choices: dict[str, str] = {}
    for command in _shown(ctx):
        for word in (synonyms(ctx.language).get("intents") or {}).get(command.intent) or ():
            choices[f"{command.intent}\0{word}"] = str(word).lower()
    found = process.extract(said, choices, scorer=fuzz.partial_ratio, limit=6, score_cutoff=80)
    intents: list[str] = []
    for _, _, key in found:
        intent = key.split("\0", 1)[0]
        if intent not in intents:
            intents.append(intent)
    return intents[:2]


def handle_help(ctx: Context, request: Request) -> Result:
    """Help: every command with an example, or one command when named ("help ranking")."""
    if request.intent == "help":
        named = next(
            (c.intent for c in _shown(ctx) if c.intent != "help" and c.intent in request.words),
            None,
        )
        return Result(help_reply(ctx, only=named))
    first = ctx.t("help.not_understood")
    plausible = _plausible(ctx, request)
    if plausible:
        examples = [ctx.t(f"help.{intent}.example") for intent in plausible]
        quoted = [ctx.t("help.quote", text=example) for example in examples]
        first += " " + ctx.t("unknown.did_you_mean", names=ctx.t("list.separator").join(quoted))
        buttons = tuple(Button(example, ASK, example) for example in examples)
        return Result(Reply(first, ctx.language, buttons=buttons))
    return Result(help_reply(ctx, first))


def handle_ping(ctx: Context, request: Request) -> Result:
    """An answer that needs no numbers: the bot is up (and the benchmarks' echo)."""
    return Result(Reply(ctx.t("ping.pong"), ctx.language))


def install(registry: Registry, core: Core) -> None:
    """Register help and ping."""
    registry.command(Command("ping", "help", handle_ping, 5))
    registry.command(Command("help", "help", handle_help, 6))


FEATURE = Feature("help", install)
