"""The single outbound path: command replies, digests and alerts all leave through here.

For now it delivers at once through the platform's adapter; the durable outbox (scheduler
issue) replaces the inside of `deliver` without touching its callers.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.chat.adapter import ChatAdapter
from bot.chat.messages import Reply, Sent, Target


class Notifier:
    """Delivers replies through the adapter of their target's platform."""

    def __init__(self, adapters: Mapping[str, ChatAdapter]) -> None:
        self.adapters = dict(adapters)

    def adapter(self, platform: str) -> ChatAdapter:
        """The adapter for `platform` (KeyError when none is configured)."""
        return self.adapters[platform]

    def deliver(self, reply: Reply, target: Target) -> Sent:
        """Send `reply` to `target`."""
        return self.adapters[target.platform].send(reply, target)
