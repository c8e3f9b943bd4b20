"""The one small interface every chat platform implements, and its shared errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from bot.chat.messages import Reply, Sent, Target

if TYPE_CHECKING:
    from starlette.requests import Request

# The largest webhook body any platform's callback may carry (their payloads are a few KB; a
# Slack interaction with a whole message in it tens of KB): larger ones get 413 unread.
MAX_BODY_BYTES = 1024 * 1024


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """A webhook request's body, or None when it is longer than `limit` bytes (announced by
    its Content-Length or found while reading: nothing beyond the limit is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class ChatAdapter(Protocol):
    """A chat platform's outbound side; its inbound side turns requests into messages."""

    platform: str
    # True when a private reply shows in the chat it was asked in, for the asker only (Slack's
    # ephemeral messages, the console); otherwise it goes to a direct chat and the group gets
    # a short note.
    private_in_place: bool

    def render(self, reply: Reply, target: Target) -> object:
        """The platform's payload for `reply` (Block Kit, a Feishu card, DingTalk markdown…)."""
        ...

    def send(self, reply: Reply, target: Target, *, key: str | None = None) -> Sent:
        """Deliver `reply`; raises a `ChatError` subclass on failure.

        `key` is the outbox's idempotency key for this message: where the platform
        deduplicates sends (Feishu's `uuid`), a retried send with the same key posts once.
        """
        ...

    def update(self, sent: Sent, reply: Reply) -> Sent:
        """Replace a message sent earlier; raises `Unsupported` where the platform cannot."""
        ...


class ChatError(Exception):
    """A platform refused or failed a call."""


class RateLimited(ChatError):
    """Too many calls: retry after `retry_after` seconds."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthRevoked(ChatError):
    """The bot's credentials no longer work: nothing will succeed until they are fixed."""


class TargetNotFound(ChatError):
    """The channel, user or message does not exist (or the bot is not in it)."""


class Unsupported(ChatError):
    """The platform cannot do this (e.g. a DingTalk robot editing a message)."""


class Unavailable(ChatError):
    """The platform did not answer or failed on its side: retry later."""
