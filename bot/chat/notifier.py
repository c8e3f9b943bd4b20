"""The single outbound path: replies, digests, alerts, notices and card edits all leave
through here, as outbox rows.

A reply to someone who asked is stored and then delivered at once in the caller's thread, so
the asker does not wait for the sender loop; anything that fails stays in the outbox for the
sender to retry. Every other effect (a post, an edit of a card, a thread message) is stored
for the sender loop, which paces it within the platform's limits. `Notifier(adapters)` alone,
with no outbox, sends directly: only for tests of the chat core.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from bot.chat.adapter import ChatAdapter
from bot.chat.effects import Edit, Effect, Post, RunSoon
from bot.chat.messages import Reply, Sent, Target
from kpi_engine.units import after_commit

if TYPE_CHECKING:
    from bot.outbox import Outbox, Sender


class Notifier:
    """Delivers replies and effects through the outbox and the adapters."""

    def __init__(
        self,
        adapters: Mapping[str, ChatAdapter],
        *,
        outbox: Outbox | None = None,
        sender: Sender | None = None,
        run_soon: Callable[[str], None] | None = None,
    ) -> None:
        self.adapters = dict(adapters)
        self.outbox = outbox
        self.sender = sender
        # Runs a registered job soon, off the chat worker (the composition root sets it).
        self.run_soon = run_soon

    def adapter(self, platform: str) -> ChatAdapter:
        """The adapter for `platform` (KeyError when none is configured)."""
        return self.adapters[platform]

    def deliver(
        self, reply: Reply, target: Target, *, key: str | None = None, kind: str = "reply"
    ) -> Sent | None:
        """Send `reply` to `target` now; None if it is left to the outbox (or was sent before
        under `key`). Inside a unit of work it is stored with what the unit writes and sent
        once the unit commits (None here)."""
        if self.outbox is None or self.sender is None:
            return self.adapters[target.platform].send(reply, target, key=key)
        stored = self.outbox.put(reply, target, key=key, kind=kind)
        if stored is None:
            return None  # this key was delivered (or is on its way) already
        sender, sent = self.sender, list[Sent | None]()
        after_commit(self.outbox.engine, lambda: sent.append(sender.deliver_now(stored)))
        return sent[0] if sent else None

    def post(
        self, reply: Reply, target: Target, *, key: str, kind: str, thread_of: str | None = None
    ) -> bool:
        """Store a message for the sender loop; False if `key` was stored before."""
        if self.outbox is None or self.sender is None:
            self.adapters[target.platform].send(reply, target, key=key)
            return True
        stored = self.outbox.put(reply, target, key=key, kind=kind, thread_of=thread_of)
        after_commit(self.outbox.engine, self.sender.wake)
        return stored is not None

    def edit(self, original: str, reply: Reply, *, key: str) -> bool:
        """Store an edit of the message sent under `original`; False when there is no such
        message or this edit was stored before."""
        if self.outbox is None or self.sender is None:
            return False
        stored = self.outbox.put_edit(original, reply, key=key)
        after_commit(self.outbox.engine, self.sender.wake)
        return stored is not None

    def apply(self, effects: Iterable[Effect]) -> int:
        """Carry out a handler's effects, in order; how many messages were stored."""
        stored = 0
        for effect in effects:
            if isinstance(effect, Post):
                stored += self.post(
                    effect.reply,
                    effect.target,
                    key=effect.key,
                    kind=effect.kind,
                    thread_of=effect.thread_of,
                )
            elif isinstance(effect, Edit):
                stored += self.edit(effect.original, effect.reply, key=effect.key)
            elif isinstance(effect, RunSoon) and self.run_soon is not None:
                self.run_soon(effect.job)
        return stored
