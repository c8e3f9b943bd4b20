"""What a handler asks to happen besides its answer: messages to post, cards to update, jobs to
run soon. Handlers return them and never send; the notifier turns every effect into outbox rows
(with the same retry, pacing and dead-letter rules), in the order given.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.chat.messages import Reply, Target


@dataclass(frozen=True)
class Post:
    """A message to `target`, once per `key` ever. `thread_of` names the outbox key of a
    message whose thread it belongs in (the sender waits until that one is sent)."""

    reply: Reply
    target: Target
    key: str
    kind: str = "notice"
    thread_of: str | None = None


@dataclass(frozen=True)
class Edit:
    """Replace the message sent under outbox key `original` with `reply` (where the platform
    can update messages; elsewhere nothing is sent). `key` makes the edit happen once."""

    original: str
    reply: Reply
    key: str


@dataclass(frozen=True)
class RunSoon:
    """Run a registered job soon, outside the chat worker (e.g. restatement checks)."""

    job: str


Effect = Post | Edit | RunSoon


@dataclass(frozen=True)
class Result:
    """A handler's answer to whoever asked or clicked (None: nothing to say), and its effects."""

    reply: Reply | None
    effects: tuple[Effect, ...] = ()
    # What the answer turned out to be about, as `kpibot ask --json` reports it: the scope
    # ("team:sz-live") and the period's label ("2026-11", "2026-W47") the handler used.
    scope: str | None = None
    period: str | None = None

    @classmethod
    def of(cls, reply: Reply, *effects: Effect) -> Result:
        """An answer with effects."""
        return cls(reply, tuple(effects))
