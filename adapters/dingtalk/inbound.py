"""Receiving from DingTalk: Stream mode (the default, no public URL) through dingtalk-stream,
and the robot's HTTP callback `POST /dingtalk/robot`.

HTTP callbacks carry `timestamp` (ms) and `sign` = Base64(HMAC-SHA256(AppSecret, timestamp +
"\\n" + AppSecret)); a wrong sign or a timestamp more than an hour away gets 401 and nothing is
processed. The sign does not cover the body, so the pipeline's record of each `msgId` is what
stops a replay within the hour. Group messages reach the bot only when it is @-mentioned; single
chats always. Interactive-card clicks arrive on the Stream topic `/v1.0/card/instances/callback`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import FastAPI, Request, Response

from adapters.loops import finish
from bot.chat.adapter import MAX_BODY_BYTES, read_body
from bot.chat.messages import Action, InboundMessage, displayable
from bot.chat.pipeline import Pipeline
from bot.chat.webhooks import add_webhook, off_loop
from kpi_engine.clock import system_clock

log = logging.getLogger(__name__)
WINDOW_SECONDS = 3600
CARD_TOPIC = "/v1.0/card/instances/callback"
BOT_TOPIC = "/v1.0/im/bot/messages/get"


def callback_sign(secret: str, timestamp: str) -> str:
    """The `sign` header of a robot callback."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def parse_message(
    data: dict[str, Any], clock: Callable[[], float] = system_clock, *, replayable: bool = False
) -> InboundMessage | None:
    """A robot message (HTTP body or Stream `data`) as an `InboundMessage`; None for what the
    bot does not answer (a group message that does not @mention it, non-text). `replayable`
    for the HTTP callback, whose signature does not cover the body."""
    direct = str(data.get("conversationType")) == "1"
    if not direct and not data.get("isInAtList"):
        return None
    text = ""
    if data.get("msgtype") == "text":
        text = str((data.get("text") or {}).get("content", ""))
    elif data.get("msgtype") == "richText":
        parts = ((data.get("content") or {}).get("richText")) or []
        text = " ".join(str(p.get("text", "")) for p in parts if "text" in p)
    sender = data.get("senderStaffId") or data.get("senderId")
    if not text.strip() or not sender or not data.get("msgId"):
        return None
    return InboundMessage(
        platform="dingtalk",
        workspace=str(data.get("chatbotCorpId") or data.get("senderCorpId") or ""),
        # A single chat is answered one-to-one by user id: it has no group to post to.
        channel="" if direct else str(data.get("conversationId", "")),
        sender=str(sender),
        text=" ".join(displayable(text).split()),  # no lone surrogate or control character
        event_id=str(data["msgId"]),
        received_at=int(clock()),
        is_direct=direct,
        replayable=replayable,
    )


def parse_card_callback(
    data: dict[str, Any], message_id: str, clock: Callable[[], float] = system_clock
) -> Action | None:
    """A card button click (`CardCallbackMessage`) as an `Action`: the button's callback
    parameters carry the action and value."""
    content = data.get("content")
    if isinstance(content, str):
        content = json.loads(content or "{}")
    params = ((content or {}).get("cardPrivateData") or {}).get("params") or {}
    if "action" not in params or not data.get("userId") or not data.get("outTrackId"):
        return None
    # A click in the robot's one-to-one chat (space IM_ROBOT) names no group: it is answered
    # in that chat, by the clicker's user id.
    group = str(data.get("openConversationId") or "")
    if not group and data.get("spaceType") == "IM_GROUP":
        group = str(data.get("spaceId") or "")
    return Action(
        platform="dingtalk",
        workspace=str(data.get("corpId", "")),
        action=str(params["action"]),
        value=str(params.get("value", "")),
        sender=str(data["userId"]),
        channel=group,
        message_id="card:" + str(data["outTrackId"]),
        event_id=message_id,
        received_at=int(clock()),
        is_direct=not group,
    )


class DingTalkEvents:
    """Hands DingTalk messages and clicks to the pipeline (shared by HTTP and Stream)."""

    def __init__(self, client_secret: str, *, clock: Callable[[], float] = system_clock) -> None:
        self.client_secret = client_secret
        self.clock = clock
        self.pipeline: Pipeline | None = None

    def verify(self, timestamp: str, sign: str) -> str | None:
        """Why a callback is refused, or None."""
        if not timestamp or not sign:
            return "the timestamp or sign header is missing"
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 16):
            return "the timestamp is not a time in milliseconds"
        if not sign.isascii():
            return "the sign is not Base64"
        age = abs(self.clock() * 1000 - int(timestamp)) / 1000
        if age > WINDOW_SECONDS:
            return f"the request is {age:.0f} s old"
        expected = callback_sign(self.client_secret, timestamp)
        if not hmac.compare_digest(sign.encode(), expected.encode()):
            return "the sign does not match"
        return None

    def message(self, data: dict[str, Any], *, replayable: bool = False) -> bool:
        """A robot message; False when it was not for the bot or seen before."""
        parsed = parse_message(data, self.clock, replayable=replayable)
        if parsed is None or self.pipeline is None:
            return False
        return self.pipeline.accept(parsed)

    def card(self, data: dict[str, Any], message_id: str) -> bool:
        """A card click."""
        action = parse_card_callback(data, message_id, self.clock)
        if action is None or self.pipeline is None:
            return False
        return self.pipeline.accept_action(action)


def _answer(status: int, message: str) -> Response:
    return Response(json.dumps({"msg": message}), status, media_type="application/json")


def mount_webhook(app: FastAPI, events: DingTalkEvents) -> None:
    """`POST /dingtalk/robot`: the robot's HTTP message callback."""

    async def robot(request: Request) -> Response:
        body = await read_body(request, MAX_BODY_BYTES)
        if body is None:
            log.warning("refused a DingTalk callback: larger than %d bytes", MAX_BODY_BYTES)
            return _answer(413, "too large")
        reason = events.verify(
            request.headers.get("timestamp", ""), request.headers.get("sign", "")
        )
        if reason is not None:
            log.warning("refused a DingTalk callback: %s", reason)
            return _answer(401, "unauthorised")
        try:
            data = json.loads(body)
        except ValueError:  # UnicodeDecodeError included
            log.warning("refused a DingTalk callback: the body is not JSON")
            return _answer(400, "not JSON")
        # The sign covers only the timestamp: this body could be anybody's within the hour.
        # Recording waits for the database: off the event loop.
        await off_loop(
            partial(events.message, data if isinstance(data, dict) else {}, replayable=True)
        )
        return Response("{}", media_type="application/json")

    add_webhook(app, "/dingtalk/robot", robot)


class StreamConnection:
    """dingtalk-stream's client in a thread of its own, with its own event loop. The SDK
    reconnects by itself (10 s after a network error, 3 s after others); each reconnection is
    logged, since bot messages sent while it was down are not pushed again."""

    def __init__(
        self, client_id: str, client_secret: str, api: str, events: DingTalkEvents
    ) -> None:
        import dingtalk_stream
        from dingtalk_stream import AckMessage, ChatbotHandler, DingTalkStreamClient
        from dingtalk_stream.handlers import CallbackHandler

        # The SDK reads its endpoint at import; the configured API host wins.
        DingTalkStreamClient.OPEN_CONNECTION_API = (
            f"{api.rstrip('/')}/v1.0/gateway/connections/open"
        )
        self.events = events
        self.client = DingTalkStreamClient(dingtalk_stream.Credential(client_id, client_secret))
        connection = self

        class Messages(ChatbotHandler):  # type: ignore[misc]
            async def process(self, callback: Any) -> tuple[int, str]:
                connection.events.message(dict(callback.data))
                return AckMessage.STATUS_OK, "OK"

        class Cards(CallbackHandler):  # type: ignore[misc]
            async def process(self, callback: Any) -> tuple[int, str]:
                connection.events.card(dict(callback.data), str(callback.headers.message_id))
                return AckMessage.STATUS_OK, "OK"

        self.client.register_callback_handler(BOT_TOPIC, Messages())
        self.client.register_callback_handler(CARD_TOPIC, Cards())
        opened = self.client.open_connection
        self.opens = 0

        def open_connection() -> Any:
            answer = opened()
            if answer:
                self.opens += 1
                if self.opens > 1:
                    log.warning(
                        "DingTalk Stream connection re-opened (%d times so far): bot messages "
                        "sent while it was down are not delivered again",
                        self.opens - 1,
                    )
            return answer

        self.client.open_connection = open_connection
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Connect in the background."""
        self._thread = threading.Thread(target=self._run, name="dingtalk-stream", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            with contextlib.suppress(RuntimeError):  # `stop()` stopped the loop
                loop.run_until_complete(self.client.start())
        finally:
            finish(loop)

    def stop(self, timeout: float = 5) -> None:
        """Stop the loop and wait for the thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
