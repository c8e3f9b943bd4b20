"""The single outbound path: command replies, digests, alerts and notices all leave through here.

With an outbox (every deployment; `Notifier(adapters)` alone is for tests of the chat core) a
message is stored before it is sent. A reply is then delivered at once in the caller's thread,
so the asker does not wait for the sender loop; anything that fails stays in the outbox for
the sender to retry. Scheduled messages are stored and the sender loop is woken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from bot.chat.adapter import ChatAdapter
from bot.chat.messages import Reply, Sent, Target

if TYPE_CHECKING:
    from bot.outbox import Outbox, Sender


class Notifier:
    """Delivers replies through the adapter of their target's platform, via the outbox."""

    def __init__(
        self,
        adapters: Mapping[str, ChatAdapter],
        *,
        outbox: Outbox | None = None,
        sender: Sender | None = None,
    ) -> None:
        self.adapters = dict(adapters)
        self.outbox = outbox
        self.sender = sender

    def adapter(self, platform: str) -> ChatAdapter:
        """The adapter for `platform` (KeyError when none is configured)."""
        return self.adapters[platform]

    def deliver(
        self, reply: Reply, target: Target, *, key: str | None = None, kind: str = "reply"
    ) -> Sent | None:
        """Send `reply` to `target` now; None if it is left to the outbox (or was sent before
        under `key`)."""
        if self.outbox is None or self.sender is None:
            return self.adapters[target.platform].send(reply, target, key=key)
        stored = self.outbox.put(reply, target, key=key, kind=kind)
        if stored is None:
            return None  # this key was delivered (or is on its way) already
        return self.sender.deliver_now(stored)

    def post(self, reply: Reply, target: Target, *, key: str, kind: str) -> bool:
        """Store a message for the sender loop (digests, alerts); False if `key` was stored
        before."""
        if self.outbox is None or self.sender is None:
            self.adapters[target.platform].send(reply, target, key=key)
            return True
        stored = self.outbox.put(reply, target, key=key, kind=kind)
        self.sender.wake()
        return stored is not None
