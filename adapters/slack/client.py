"""The outbound side: `SlackAdapter` delivers replies through the Slack Web API (slack_sdk).

Where a reply goes: a channel (`chat.postMessage`, in a thread with `thread_ts`); a private
reply in a channel as an ephemeral message to its one reader (`chat.postEphemeral`); a private
reply with no chat yet (`Target.direct`) into the direct chat `conversations.open` gives. A
chart is uploaded with `files_upload_v2` into the same channel and thread, after the message.
`update` edits a message in place (`chat.update`: the message ts is `Sent.message_id`).

The client makes no retries of its own: failures become the shared chat errors
(`adapters.slack.errors`) and the outbox decides, so retry and backoff live in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from adapters.slack.errors import error_code, to_chat_error
from adapters.slack.render import render_message, render_text, truncate
from bot.chat.adapter import TargetNotFound
from bot.chat.messages import Reply, Sent, Target, displayable
from bot.chat.recent import Recent

log = logging.getLogger(__name__)

# Block Kit refused: the same message again as plain text says everything (Reply.text).
_BLOCKS_REFUSED = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long"})


def make_web_client(token: str, base_url: str, *, timeout: int = 10) -> WebClient:
    """A Web API client on `base_url` that leaves retrying to the outbox."""
    if not base_url.endswith("/"):
        base_url += "/"
    return WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[])


class SlackAdapter:
    """Renders replies as Block Kit and sends them with the bot token."""

    platform = "slack"
    private_in_place = True  # ephemeral messages: shown in the channel, to the asker only
    DIRECT_CHATS = 10_000  # users' direct chats remembered

    def __init__(self, client: WebClient) -> None:
        self.client = client
        # User id → their direct chat with the bot; bounded (a forgotten one is opened again).
        self._direct: Recent[str, str] = Recent(self.DIRECT_CHATS)

    def render(self, reply: Reply, target: Target) -> dict[str, Any]:
        """The `text` and `blocks` for `reply` at `target`."""
        return render_message(reply, chart_attached=self._uploads_chart(reply, target))

    def send(self, reply: Reply, target: Target, *, key: str | None = None) -> Sent:
        """Post `reply`; raises a `ChatError` on failure. (`chat.postMessage` takes no
        idempotency key, so `key` is not sent.)"""
        payload = self.render(reply, target)
        thread = {"thread_ts": target.thread} if target.thread else {}
        if self._ephemeral(target):
            if not target.user:
                raise TargetNotFound("a private Slack reply in a channel needs its reader")
            try:
                response = self._post(
                    "chat.postEphemeral",
                    self.client.chat_postEphemeral,
                    reply,
                    channel=target.channel,
                    user=target.user,
                    **payload,
                    **thread,
                )
            except TargetNotFound as exc:
                # Not in that channel (a /kpi typed where the bot was never invited): the
                # private answer still reaches its reader, in their direct chat.
                log.info("%s; answering %s in their direct chat instead", exc, target.user)
                return self.send(
                    reply, Target.direct(target.platform, target.workspace, target.user)
                )
            return Sent(self.platform, target.channel, str(response["message_ts"]), payload)
        channel = target.channel or self._direct_chat(target)
        response = self._post(
            "chat.postMessage",
            self.client.chat_postMessage,
            reply,
            channel=channel,
            **payload,
            **thread,
        )
        sent = Sent(self.platform, str(response["channel"]), str(response["ts"]), payload)
        if reply.chart is not None and self._uploads_chart(reply, target):
            self._upload_chart(reply, sent.channel, target.thread)
        return sent

    def update(self, sent: Sent, reply: Reply) -> Sent:
        """Replace the message `sent` (its channel and ts) with `reply`."""
        payload = render_message(reply)
        response = self._post(
            "chat.update",
            self.client.chat_update,
            reply,
            channel=sent.channel,
            ts=sent.message_id,
            **payload,
        )
        return Sent(self.platform, str(response["channel"]), str(response["ts"]), payload)

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _ephemeral(target: Target) -> bool:
        # A private reply in a channel; a direct chat ("D…") is private already.
        return bool(target.private and target.channel and not target.channel.startswith("D"))

    def _uploads_chart(self, reply: Reply, target: Target) -> bool:
        # Files cannot be ephemeral: a private reply in a channel carries the chart as text.
        return reply.chart is not None and not self._ephemeral(target)

    def _direct_chat(self, target: Target) -> str:
        if not target.user:
            raise TargetNotFound("a Slack message needs a channel or a user")
        known = self._direct.get(target.user)
        if known:
            return known
        response = self._call(
            "conversations.open", self.client.conversations_open, users=target.user
        )
        channel = str(response["channel"]["id"])
        self._direct.put(target.user, channel)
        return channel

    def _post(
        self, method: str, call: Callable[..., SlackResponse], reply: Reply, **kwargs: Any
    ) -> SlackResponse:
        """A message call; when Slack refuses the blocks, the plain text instead."""
        try:
            return call(**kwargs)
        except SlackApiError as exc:
            if error_code(exc) not in _BLOCKS_REFUSED:
                raise to_chat_error(exc, method) from exc
            log.warning("Slack refused the blocks (%s); sending the text alone", error_code(exc))
        except Exception as exc:
            raise to_chat_error(exc, method) from exc
        kwargs.pop("blocks", None)
        kwargs["text"] = render_text(reply)
        return self._call(method, call, **kwargs)

    @staticmethod
    def _call(method: str, call: Callable[..., SlackResponse], **kwargs: Any) -> SlackResponse:
        try:
            return call(**kwargs)
        except Exception as exc:
            raise to_chat_error(exc, method) from exc

    def _upload_chart(self, reply: Reply, channel: str, thread: str | None) -> None:
        # The message is out already: a failed upload is logged, not raised, since a retry
        # of the whole send would post the message twice (and its text says it all).
        assert reply.chart is not None
        chart = reply.chart
        try:
            self.client.files_upload_v2(
                channel=channel,
                file=chart.png,
                filename="chart.png",
                title=chart.title,
                alt_txt=truncate(displayable(chart.alt), 1000),
                thread_ts=thread,
            )
        except Exception as exc:
            log.warning(
                "uploading the chart to %s failed: %s",
                channel,
                to_chat_error(exc, "files_upload_v2"),
            )
