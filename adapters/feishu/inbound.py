"""Receiving from Feishu/Lark: the event and card-callback webhooks, and the long connection.

Every webhook request is checked here before lark-oapi's dispatcher sees it: with an Encrypt
Key, the body must be encrypted and `X-Lark-Signature` must equal SHA-256 (a plain hash, not an
HMAC) over timestamp + nonce + encrypt key + raw body, compared in constant time, with the
timestamp inside a window (lark-oapi checks no window); without one, the verification token
must match. A refused request gets 401 and nothing is processed. The url_verification
challenge is answered by the dispatcher (also when encrypted). Accepted events become
`InboundMessage` / `Action` for the pipeline, which records the delivery's `event_id` first,
so Feishu's re-pushes (after 15 s, 5 min, 1 h, 6 h) are processed once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import lark_oapi as lark
import lark_oapi.ws.client as ws_client
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from lark_oapi.core.utils.decryptor import AESCipher
from lark_oapi.event.callback.model.p2_card_action_trigger import (
    P2CardActionTrigger,
    P2CardActionTriggerResponse,
)

from adapters.feishu.outbound import FeishuAdapter
from adapters.loops import finish
from bot.chat.adapter import MAX_BODY_BYTES, ChatError, read_body
from bot.chat.messages import Action, InboundMessage, Reply, Target, displayable
from bot.chat.pipeline import Pipeline
from bot.i18n import texts
from kpi_engine.clock import system_clock

log = logging.getLogger(__name__)

# lark-oapi reads these with exact capitalisation; Starlette gives them lower-cased.
HEADERS = ("X-Lark-Request-Timestamp", "X-Lark-Request-Nonce", "X-Lark-Signature")
WINDOW_SECONDS = 300
HANDLED = {
    "im.message.receive_v1",
    "card.action.trigger",
    "im.chat.member.bot.added_v1",
    "im.chat.member.bot.deleted_v1",
}


class Refused(Exception):
    """A webhook request that is not authentic (or too old): answered 401."""


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """Feishu's `X-Lark-Signature`: hex SHA-256 of timestamp + nonce + encrypt key + body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode("utf-8") + body).hexdigest()


def _same(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(
        given.encode("utf-8"), expected.encode("utf-8")
    )


class FeishuEvents:
    """Turns Feishu events into pipeline calls; shared by the webhook and the long connection."""

    def __init__(
        self,
        adapter: FeishuAdapter,
        *,
        encrypt_key: str | None,
        verification_token: str | None,
        clock: Callable[[], float] = system_clock,
        window: float = WINDOW_SECONDS,
    ) -> None:
        self.adapter = adapter
        self.encrypt_key = encrypt_key or None
        self.verification_token = verification_token or None
        self.clock = clock
        self.window = window
        self.pipeline: Pipeline | None = None
        self.dispatcher = (
            lark.EventDispatcherHandler.builder(
                self.encrypt_key or "", self.verification_token or ""
            )
            .register_p2_im_message_receive_v1(self.on_message)
            .register_p2_card_action_trigger(self.on_card_action)
            .register_p2_im_chat_member_bot_added_v1(self.on_bot_added)
            .register_p2_im_chat_member_bot_deleted_v1(self.on_bot_removed)
            .build()
        )

    # -- authenticity ------------------------------------------------------------------------

    def verify(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """The request's (decrypted) payload; raises `Refused` unless it is Feishu's own and
        fresh."""
        try:
            outer = json.loads(body)
        except ValueError as exc:
            raise Refused("the body is not JSON") from exc
        if not isinstance(outer, dict):
            raise Refused("the body is not a JSON object")
        if self.encrypt_key:
            encrypted = outer.get("encrypt")
            if not isinstance(encrypted, str) or not encrypted:
                raise Refused("an Encrypt Key is configured but the body is not encrypted")
            try:
                inner = json.loads(AESCipher(self.encrypt_key).decrypt_str(encrypted))
            except Exception as exc:  # bad base64, padding or JSON: not ours
                raise Refused("the body does not decrypt with the Encrypt Key") from exc
            if not isinstance(inner, dict):
                raise Refused("the decrypted body is not a JSON object")
            if inner.get("type") == "url_verification":
                self._check_token(inner.get("token"))
                return inner
            timestamp = headers.get("x-lark-request-timestamp", "")
            nonce = headers.get("x-lark-request-nonce", "")
            given = headers.get("x-lark-signature", "")
            if not (timestamp and nonce and given):
                raise Refused("the signature headers are missing")
            if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
                raise Refused("the timestamp is not a time in seconds")
            age = abs(self.clock() - int(timestamp))
            if age > self.window:
                raise Refused(f"the request is {age:.0f} s old (a replay?)")
            if not _same(given, signature(timestamp, nonce, self.encrypt_key, body)):
                raise Refused("the signature does not match")
            return inner
        header = outer.get("header")
        token = header.get("token") if isinstance(header, dict) else outer.get("token")
        self._check_token(token)
        return outer

    def handles(self, payload: dict[str, Any]) -> bool:
        """Whether the dispatcher has a handler for this payload (else it is acknowledged and
        dropped: an event the app is subscribed to but kpibot does not use, or a schema 1.0
        event of an old app)."""
        if payload.get("type") == "url_verification":
            return True
        header = payload.get("header")
        kind = header.get("event_type") if isinstance(header, dict) else None
        return kind in HANDLED

    def _check_token(self, token: object) -> None:
        if self.verification_token and not _same(token, self.verification_token):
            raise Refused("the verification token does not match")

    # -- events ------------------------------------------------------------------------------

    def _pipeline(self) -> Pipeline:
        if self.pipeline is None:
            raise RuntimeError("Feishu events arrived before the pipeline was attached")
        return self.pipeline

    def on_message(self, data: lark.im.v1.P2ImMessageReceiveV1) -> None:
        """A message in a group (when it @mentions the bot) or a direct chat."""
        message = parse_message(data, self.adapter.bot_open_id, self.clock)
        if message is not None:
            self._pipeline().accept(message)

    def on_card_action(self, data: P2CardActionTrigger) -> P2CardActionTriggerResponse:
        """A button click: handed on, answered at once (the card is updated afterwards)."""
        action = parse_card_action(data, self.clock)
        if action is not None:
            self._pipeline().accept_action(action)
        return P2CardActionTriggerResponse()

    def on_bot_added(self, data: lark.im.v1.P2ImChatMemberBotAddedV1) -> None:
        """Added to a group: say hello there, once per event."""
        event, header = data.event, data.header
        if event is None or header is None or not event.chat_id:
            return
        log.info("added to Feishu chat %s (%s)", event.chat_id, event.name)
        target = Target("feishu", header.tenant_key or "", event.chat_id)
        pipeline = self._pipeline()
        # In the language of the team whose group it is, else the organisation's.
        core = pipeline.router.core
        team = core.access.team_of_channel("feishu", event.chat_id)
        organisation = core.organisation
        language = (
            organisation.teams[team].language if team else organisation.settings.default_language
        )
        welcome = Reply(texts(language)("render.welcome"), language)
        try:
            pipeline.notifier.deliver(welcome, target, key=f"welcome:feishu:{header.event_id}")
        except ChatError:
            log.exception("the welcome to Feishu chat %s stays in the outbox", event.chat_id)

    def on_bot_removed(self, data: lark.im.v1.P2ImChatMemberBotDeletedV1) -> None:
        """Removed from a group: nothing more will be sent there."""
        if data.event is not None:
            log.info("removed from Feishu chat %s", data.event.chat_id)


def _text_of(message_type: str, content: str) -> str:
    """The plain text of a text or rich-text (post) message; "" for anything else."""
    try:
        parsed = json.loads(content or "{}")
    except ValueError:
        return ""
    if message_type == "text":
        return str(parsed.get("text", ""))
    if message_type == "post":
        # Received posts carry {"title", "content"}; sent ones are keyed by language.
        localised = [v for v in parsed.values() if isinstance(v, dict)]
        body: Any = parsed.get("content") or (localised[0].get("content") if localised else [])
        parts: list[str] = []
        for line in body or []:
            for item in line:
                if item.get("tag") == "text":
                    parts.append(str(item.get("text", "")))
                elif item.get("tag") == "at":
                    parts.append(str(item.get("user_id", "")))
            parts.append("\n")
        return "".join(parts).strip()
    return ""


def parse_message(
    data: lark.im.v1.P2ImMessageReceiveV1,
    bot_open_id: Callable[[], str],
    clock: Callable[[], float] = system_clock,
) -> InboundMessage | None:
    """An `InboundMessage`, or None for what the bot does not answer (other bots, group
    messages that do not @mention it, images and files)."""
    event, header = data.event, data.header
    if event is None or header is None or event.message is None or event.sender is None:
        return None
    if event.sender.sender_type not in (None, "user"):
        return None
    message = event.message
    text = _text_of(message.message_type or "", message.content or "")
    if not text:
        return None
    is_direct = message.chat_type == "p2p"
    mentioned: list[str] = []
    addressed = is_direct
    bot: str | None = None
    for mention in message.mentions or []:
        open_id = mention.id.open_id if mention.id is not None else None
        key = mention.key or ""
        if bot is None:
            try:
                bot = bot_open_id()
            except ChatError:
                log.warning("cannot tell the bot's own open_id; any mention addresses it")
                bot = ""
        if open_id and (open_id == bot or not bot) and not addressed:
            addressed = True
            text = text.replace(key, " ")
        elif open_id:
            mentioned.append(open_id)
            text = text.replace(key, f"@{mention.name or open_id}")
    if not addressed:
        return None
    sender = event.sender.sender_id.open_id if event.sender.sender_id else None
    if not sender:
        return None
    return InboundMessage(
        platform="feishu",
        workspace=header.tenant_key or event.sender.tenant_key or "",
        channel=message.chat_id or "",
        sender=sender,
        text=" ".join(displayable(text).split()),  # no lone surrogate or control character
        event_id=header.event_id or message.message_id or "",
        received_at=int(clock()),
        thread=message.root_id if message.thread_id else None,
        mentions=tuple(mentioned),
        is_direct=is_direct,
    )


def parse_card_action(
    data: P2CardActionTrigger, clock: Callable[[], float] = system_clock
) -> Action | None:
    """An `Action` for a button click on one of our cards (value ``{"action", "value"}``)."""
    event, header = data.event, data.header
    if event is None or header is None or event.action is None or event.operator is None:
        return None
    value: dict[str, Any] = event.action.value or {}
    if "action" not in value or not event.operator.open_id:
        return None
    context = event.context
    direct = value.get("direct") is True
    return Action(
        platform="feishu",
        workspace=header.tenant_key or event.operator.tenant_key or "",
        action=str(value["action"]),
        value=str(value.get("value", "")),
        sender=event.operator.open_id,
        channel=(context.open_chat_id if context else None) or "",
        message_id=(context.open_message_id if context else None) or "",
        event_id=header.event_id or "",
        received_at=int(clock()),
        is_direct=direct,
    )


def mount_webhooks(app: FastAPI, events: FeishuEvents) -> None:
    """`POST /feishu/events` and `POST /feishu/card` (the same handler: the console may point
    both the event subscription and the card callback at either)."""

    async def receive(request: Request) -> Response:
        body = await read_body(request, MAX_BODY_BYTES)
        if body is None:
            log.warning("refused a Feishu request: larger than %d bytes", MAX_BODY_BYTES)
            return Response(
                json.dumps({"msg": "too large"}), status_code=413, media_type="application/json"
            )
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            payload = events.verify(headers, body)
        except Refused as exc:
            log.warning("refused a Feishu request: %s", exc)
            return Response(
                json.dumps({"msg": "unauthorised"}), status_code=401, media_type="application/json"
            )
        if not events.handles(payload):
            # Answered, so Feishu does not push it again and again.
            log.info("ignored a Feishu %s delivery", payload.get("header", {}).get("event_type"))
            return Response(json.dumps({"msg": "ignored"}), media_type="application/json")
        raw = lark.RawRequest()
        raw.uri = request.url.path
        raw.body = body
        raw.headers = {name: headers.get(name.lower(), "") for name in HEADERS}
        answer = await run_in_threadpool(events.dispatcher.do, raw)
        return Response(
            answer.content or b"{}",
            status_code=answer.status_code or 200,
            media_type="application/json",
        )

    app.add_api_route("/feishu/events", receive, methods=["POST"], include_in_schema=False)
    app.add_api_route("/feishu/card", receive, methods=["POST"], include_in_schema=False)


class LongConnection:
    """lark-oapi's WebSocket client in a thread of its own (its `start()` blocks and drives a
    module-level event loop); it reconnects by itself, with jitter, for as long as it runs."""

    def __init__(self, app_id: str, app_secret: str, domain: str, events: FeishuEvents) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.domain = domain.rstrip("/")
        self.events = events
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.client: Any = None

    def start(self) -> None:
        """Connect in the background."""
        self._thread = threading.Thread(target=self._run, name="feishu-ws", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        ws_client.loop = loop  # the module binds a loop at import: give it this thread's
        self._loop = loop
        self.client = lark.ws.Client(
            self.app_id,
            self.app_secret,
            event_handler=self.events.dispatcher,
            domain=self.domain,
            log_level=lark.LogLevel.WARNING,
        )
        try:
            self.client.start()
        except RuntimeError:
            pass  # `stop()` stopped the loop
        except Exception:
            log.exception("the Feishu long connection ended")
        finally:
            finish(loop)

    def stop(self, timeout: float = 5) -> None:
        """Stop the loop and wait for the thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
