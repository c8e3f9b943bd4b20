"""Sending to Feishu/Lark: messages, thread replies, in-place card updates, only-visible-to-you
cards, image uploads; Open API errors mapped to the shared hierarchy.

Every send carries a `uuid` derived from the outbox key, so a send retried after a crash or a
timeout posts once (Feishu deduplicates a uuid for about an hour). The calls go through our
thin client (adapters/feishu/client.py: lark-oapi costs 170 MB to import), which caches the
tenant access token; when Feishu says it is invalid, the cached one is dropped and the call is
made once more with a fresh token.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from adapters.feishu.cards import card, content
from adapters.feishu.client import Answer, FeishuClient
from bot.chat.adapter import (
    AuthRevoked,
    RateLimited,
    TargetNotFound,
    Unavailable,
    Unsupported,
)
from bot.chat.messages import Reply, Sent, Target
from bot.chat.recent import Recent

log = logging.getLogger(__name__)

# Open API error codes (Feishu's error-code tables and lark_oapi/channel/errors.py).
RATE_LIMITED = {99991400, 99991402, 11020, 11021, 11232, 11233, 230020}
TOKEN_INVALID = {99991661, 99991663, 99991664, 99991665, 99991666, 99991668}
AUTH = {10003, 10014, 99991401, 99991543, 99991672, 99991679, 230006, 230027}
TARGET = {230002, 230005, 230011, 230013, 230017, 230035, 230053, 230110, 231001, 231003}
CONTENT = {230001, 230021, 230022, 230025, 230099, 230028}
# A uuid namespace of our own: the same outbox key gives the same send uuid everywhere.
_UUID_NS = uuid.UUID("8f4d7a2e-3c61-4b7e-9a0d-5e2f1c6b9d40")


def send_uuid(key: str) -> str:
    """Feishu's idempotency `uuid` (at most 50 characters) for an outbox key."""
    return str(uuid.uuid5(_UUID_NS, key))


def raise_for(code: int, msg: str, status: int, headers: dict[str, str]) -> None:
    """Raise the shared error for a failed Open API answer (`code` non-zero or HTTP error)."""
    what = f"Feishu error {code}: {msg}" if code else f"Feishu HTTP {status}"
    if status == 429 or code in RATE_LIMITED:
        reset = {k.lower(): v for k, v in headers.items()}.get("x-ogw-ratelimit-reset", "1")
        try:
            wait = max(0.0, float(reset))
        except ValueError:
            wait = 1.0
        raise RateLimited(wait, what)
    if code in AUTH:
        raise AuthRevoked(what)
    if code in TARGET:
        raise TargetNotFound(what)
    if code in CONTENT:
        raise Unsupported(what)
    if status >= 500 or code >= 500000 or code in TOKEN_INVALID:
        raise Unavailable(what)
    # A code we do not know: retrying will not change Feishu's mind.
    raise Unsupported(what)


class FeishuAdapter:
    """The outbound side of Feishu/Lark."""

    platform = "feishu"
    # Personal numbers asked in a group come back as an only-visible-to-you card there.
    private_in_place = True
    # One-to-one chats remembered (see `_direct_chats`); the oldest are forgotten past this.
    DIRECT_CHATS = 10_000

    def __init__(self, app_id: str, app_secret: str, domain: str, *, timeout: float = 10) -> None:
        self.app_id = app_id
        self.client = FeishuClient(app_id, app_secret, domain, timeout=timeout)
        self._bot_open_id: str | None = None
        # One-to-one chats this process sent to, so that a card updated there keeps its
        # buttons' "direct" mark (another process's updates, or a chat forgotten since, fall
        # back as Feishu answers). Bounded: a bot in a big company meets many chats.
        self._direct_chats: Recent[str, bool] = Recent(self.DIRECT_CHATS)

    # -- calls -------------------------------------------------------------------------------

    def _call(self, call: Callable[[], Answer]) -> Answer:
        """Make a call; retry once with a fresh token if Feishu says the token is bad."""
        for attempt in (1, 2):
            answer = call()
            if answer.success():
                return answer
            if answer.code in TOKEN_INVALID and attempt == 1:
                self.client.forget_token()
                continue
            raise_for(answer.code, answer.msg, answer.status, answer.headers)
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, body: dict[str, Any] | None, **query: str) -> Answer:
        return self._call(
            lambda: self.client.call(method, path, query=query or None, json_body=body)
        )

    @property
    def knows_bot_open_id(self) -> bool:
        """Whether `bot_open_id` answers without asking Feishu."""
        return self._bot_open_id is not None

    def bot_open_id(self) -> str:
        """The bot's own open_id (to tell a message that @mentions it), fetched once."""
        if self._bot_open_id is None:
            answer = self._json("GET", "/open-apis/bot/v3/info", None)
            bot = answer.body.get("bot")
            self._bot_open_id = str(bot.get("open_id", "")) if isinstance(bot, dict) else ""
        return self._bot_open_id

    def upload_image(self, png: bytes) -> str:
        """Upload a chart; its image_key."""
        answer = self._call(
            lambda: self.client.call(
                "POST",
                "/open-apis/im/v1/images",
                data={"image_type": "message"},
                files={"image": ("chart.png", png, "image/png")},
            )
        )
        return str(answer.data.get("image_key", ""))

    # -- ChatAdapter -------------------------------------------------------------------------

    def render(self, reply: Reply, target: Target) -> object:
        """The card (or text) payload for `reply`, without uploading its chart."""
        msg_type, body = content(reply)
        return {"msg_type": msg_type, "content": json.loads(body)}

    def send(self, reply: Reply, target: Target, *, key: str | None = None) -> Sent:
        """Post `reply`: in a thread, privately in a group, to a chat, or to a user."""
        image_key = self.upload_image(reply.chart.png) if reply.chart else None
        idempotency = send_uuid(key) if key else None
        if target.private and target.channel and target.user:
            try:
                return self._ephemeral(reply, target, image_key)
            except (TargetNotFound, Unsupported) as exc:
                # Topic groups and some clients cannot show it: a direct message instead.
                log.info("ephemeral card refused (%s); sending a direct message", exc)
                target = Target.direct(self.platform, target.workspace, target.user)
        # A one-to-one chat: a user's open_id, or a chat the bot answers its one reader in
        # (the pipeline names the reader of a direct chat without making it private).
        direct = not target.channel or (target.user is not None and not target.private)
        msg_type, body = content(reply, image_key=image_key, direct=direct)
        message: dict[str, Any] = {"msg_type": msg_type, "content": body}
        if idempotency:
            message["uuid"] = idempotency
        thread = target.thread or reply.thread
        if thread and target.channel:
            answer = self._json(
                "POST",
                f"/open-apis/im/v1/messages/{thread}/reply",
                {**message, "reply_in_thread": True},
            )
        else:
            id_type, receive_id = ("chat_id", target.channel)
            if not target.channel:
                if not target.user:
                    raise TargetNotFound("a Feishu target needs a chat id or a user's open_id")
                id_type, receive_id = ("open_id", target.user)
            answer = self._json(
                "POST",
                "/open-apis/im/v1/messages",
                {"receive_id": receive_id, **message},
                receive_id_type=id_type,
            )
        chat_id = answer.data.get("chat_id")
        if direct and chat_id:
            self._direct_chats.put(str(chat_id), True)
        return Sent(
            self.platform,
            str(chat_id or target.channel),
            str(answer.data.get("message_id", "")),
            {"msg_type": msg_type, "content": json.loads(body)},
        )

    def _ephemeral(self, reply: Reply, target: Target, image_key: str | None) -> Sent:
        assert target.user
        payload = card(reply, image_key=image_key)
        answer = self._json(
            "POST",
            "/open-apis/ephemeral/v1/send",
            {
                "chat_id": target.channel,
                "open_id": target.user,
                "msg_type": "interactive",
                "card": payload,
            },
        )
        message_id = str(answer.data.get("message_id", ""))
        return Sent(self.platform, target.channel, message_id, {"ephemeral": payload})

    def update(self, sent: Sent, reply: Reply) -> Sent:
        """Replace a card the bot sent (after a button click); text messages cannot be."""
        image_key = self.upload_image(reply.chart.png) if reply.chart else None
        direct = self._direct_chats.get(sent.channel) is not None
        payload = json.dumps(card(reply, image_key=image_key, direct=direct), ensure_ascii=False)
        self._json("PATCH", f"/open-apis/im/v1/messages/{sent.message_id}", {"content": payload})
        return Sent(self.platform, sent.channel, sent.message_id, json.loads(payload))
