"""The one registry features fill: their commands (intents, permission, usage), button
actions and scheduled jobs. The chat core reads it and imports no feature.

A feature is a package under `bot/features/` with a module-level `FEATURE` whose `install`
is called once by the composition root (`bot.compose.compose`) with the registry and the core
services; `bot/features/__init__.py` lists the features. The words that select a command are
not here but in the synonym files (`bot/i18n/synonyms/<lang>.yaml`, under `intents:`), keyed by
the command's intent; `help` is generated from the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from bot.chat.effects import Result
from bot.chat.messages import Action
from bot.jobs import JobKind

if TYPE_CHECKING:
    from bot.chat.context import Context
    from bot.chat.request import Request
    from bot.core import Core

Permission = Literal["member", "manager", "admin"]
RANKS: dict[Permission, int] = {"member": 0, "manager": 1, "admin": 2}

Handler = Callable[["Context", "Request"], Result]
# A button: (the click, who clicked as a context) → the answer to the clicker, plus effects.
ActionHandler = Callable[[Action, "Context"], Result | None]


@dataclass(frozen=True)
class Command:
    """One thing people can ask: what selects it, who may, how to use it, and its handler.

    `precedence`: when a message has the words of several intents, the lowest wins (specific
    before general: "确认 42" before "今天GMV"). `needs_number` intents ("ack 42", "接受 7")
    only count when a number follows their word at the start of the message. `examples` are
    message ids of examples shown by help.
    """

    intent: str
    feature: str
    handler: Handler
    precedence: int
    permission: Permission = "member"
    needs_number: bool = False
    in_help: bool = True


@dataclass
class Registry:
    """Commands, button actions and jobs, as the features registered them."""

    commands: dict[str, Command] = field(default_factory=dict)
    actions: dict[str, ActionHandler] = field(default_factory=dict)
    jobs: dict[str, JobKind] = field(default_factory=dict)

    def command(self, command: Command) -> None:
        """Register a command; an intent is registered once."""
        if command.intent in self.commands:
            raise ValueError(f"intent {command.intent!r} is registered twice")
        self.commands[command.intent] = command

    def action(self, action_id: str, handler: ActionHandler) -> None:
        """Register the handler of a button's action id."""
        if action_id in self.actions:
            raise ValueError(f"action {action_id!r} is registered twice")
        self.actions[action_id] = handler

    def job(self, kind: JobKind) -> None:
        """Register a kind of scheduled job."""
        self.jobs[kind.kind] = kind

    def ordered(self) -> list[Command]:
        """Commands in precedence order."""
        return sorted(self.commands.values(), key=lambda c: (c.precedence, c.intent))


@dataclass(frozen=True)
class Feature:
    """A chat feature: its name and how it installs itself."""

    name: str
    install: Callable[[Registry, Core], object]
    # Other features it needs installed first (their services are in `core.services`).
    after: Sequence[str] = ()


def install_all(features: Iterable[Feature], registry: Registry, core: Core) -> None:
    """Install every feature (respecting `after`), keeping each one's service by name."""
    pending = list(features)
    while pending:
        ready = [f for f in pending if all(a in core.services for a in f.after)]
        if not ready:
            names = ", ".join(f.name for f in pending)
            raise RuntimeError(f"features wait for each other: {names}")
        for feature in ready:
            core.services[feature.name] = feature.install(registry, core)
            pending.remove(feature)
