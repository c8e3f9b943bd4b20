"""Receiving from Feishu/Lark: the event and card-callback webhooks, and the long connection.

Every webhook request is checked here: with an Encrypt Key, the body must be encrypted
(AES-256-CBC, key SHA-256 of the Encrypt Key, the IV first) and `X-Lark-Signature` must equal
SHA-256 (a plain hash, not an HMAC) over timestamp + nonce + encrypt key + raw body, compared in
constant time, with the timestamp inside a window (lark-oapi checks no window); without one,
the verification token must match. A refused request gets 401 and nothing is processed. The
url_verification challenge is answered (also when encrypted). The four event types kpibot uses
are dispatched here from their documented JSON (schema 2.0) — lark-oapi's dispatcher imports
every API's event models, 170 MB — and become `InboundMessage` / `Action` for the pipeline,
which records the delivery's `event_id` first, so Feishu's re-pushes (after 15 s, 5 min, 1 h,
6 h) are processed once. Only the long connection loads lark-oapi (its WebSocket client),
and only when it is configured.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI, Request, Response

from adapters.feishu.outbound import FeishuAdapter
from adapters.loops import finish
from bot.chat.adapter import MAX_BODY_BYTES, ChatError, read_body
from bot.chat.messages import Action, InboundMessage, Reply, Target, displayable
from bot.chat.pipeline import Pipeline
from bot.chat.webhooks import add_webhook, off_loop
from bot.i18n import texts
from kpi_engine.clock import system_clock

log = logging.getLogger(__name__)

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


def decrypt(encrypt_key: str, sealed: str) -> str:
    """The plain text of an `encrypt` field: base64 of IV + AES-256-CBC(SHA-256(key)) with
    PKCS#7 padding, checked strictly; raises ValueError for anything else."""
    raw = base64.b64decode(sealed, validate=True)
    if len(raw) < 32 or len(raw) % 16:
        raise ValueError("not an AES-CBC message")
    key = hashlib.sha256(encrypt_key.encode("utf-8")).digest()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(raw[:16])).decryptor()
    plain = decryptor.update(raw[16:]) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad padding")
    return plain[:-pad].decode("utf-8")


def _dict(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (payload fields may be absent)."""
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    """`value` if it is a string, else "" (a payload field of the wrong type counts as absent)."""
    return value if isinstance(value, str) else ""


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
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
            "im.message.receive_v1": self.on_message,
            "card.action.trigger": self.on_card_action,
            "im.chat.member.bot.added_v1": self.on_bot_added,
            "im.chat.member.bot.deleted_v1": self.on_bot_removed,
        }

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
                inner = json.loads(decrypt(self.encrypt_key, encrypted))
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
        """Whether kpibot has a handler for this payload (else it is acknowledged and
        dropped: an event the app is subscribed to but kpibot does not use, or a schema 1.0
        event of an old app)."""
        if payload.get("type") == "url_verification":
            return True
        return _dict(payload.get("header")).get("event_type") in HANDLED

    def handle(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Process a verified payload; the JSON to answer with (None: nothing but 200)."""
        if payload.get("type") == "url_verification":
            return {"challenge": _str(payload.get("challenge"))}
        kind = _dict(payload.get("header")).get("event_type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        return handler(payload) if handler is not None else None

    async def handle_async(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """`handle` from the webhook's event loop: a message, once the bot's own open_id is
        known, is parsed here and recorded without a thread of its own
        (`Pipeline.accept_async`); anything else is handled in a webhook thread."""
        kind = _dict(payload.get("header")).get("event_type")
        if kind == "im.message.receive_v1" and self.adapter.knows_bot_open_id:
            message = parse_message(payload, self.adapter.bot_open_id, self.clock)
            if message is not None:
                await self._pipeline().accept_async(message)
            return None
        return await off_loop(self.handle, payload)

    def _check_token(self, token: object) -> None:
        if self.verification_token and not _same(token, self.verification_token):
            raise Refused("the verification token does not match")

    # -- events ------------------------------------------------------------------------------

    def _pipeline(self) -> Pipeline:
        if self.pipeline is None:
            raise RuntimeError("Feishu events arrived before the pipeline was attached")
        return self.pipeline

    def on_message(self, payload: dict[str, Any]) -> None:
        """A message in a group (when it @mentions the bot) or a direct chat."""
        message = parse_message(payload, self.adapter.bot_open_id, self.clock)
        if message is not None:
            self._pipeline().accept(message)

    def on_card_action(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A button click: handed on, answered at once with `{}` (the card is updated
        afterwards)."""
        action = parse_card_action(payload, self.clock)
        if action is not None:
            self._pipeline().accept_action(action)
        return {}

    def on_bot_added(self, payload: dict[str, Any]) -> None:
        """Added to a group: say hello there, once per event."""
        event, header = _dict(payload.get("event")), _dict(payload.get("header"))
        chat_id = _str(event.get("chat_id"))
        if not chat_id:
            return
        log.info("added to Feishu chat %s (%s)", chat_id, _str(event.get("name")))
        target = Target("feishu", _str(header.get("tenant_key")), chat_id)
        pipeline = self._pipeline()
        # In the language of the team whose group it is, else the organisation's.
        core = pipeline.router.core
        team = core.access.team_of_channel("feishu", chat_id)
        organisation = core.organisation
        language = (
            organisation.teams[team].language if team else organisation.settings.default_language
        )
        welcome = Reply(texts(language)("render.welcome"), language)
        try:
            pipeline.notifier.deliver(
                welcome, target, key=f"welcome:feishu:{_str(header.get('event_id'))}"
            )
        except ChatError:
            log.exception("the welcome to Feishu chat %s stays in the outbox", chat_id)

    def on_bot_removed(self, payload: dict[str, Any]) -> None:
        """Removed from a group: nothing more will be sent there."""
        log.info("removed from Feishu chat %s", _dict(payload.get("event")).get("chat_id"))


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
    payload: dict[str, Any],
    bot_open_id: Callable[[], str],
    clock: Callable[[], float] = system_clock,
) -> InboundMessage | None:
    """An `InboundMessage` from an im.message.receive_v1 event, or None for what the bot does
    not answer (other bots, group messages that do not @mention it, images and files)."""
    event, header = _dict(payload.get("event")), _dict(payload.get("header"))
    message, sender_of = _dict(event.get("message")), _dict(event.get("sender"))
    if not message or not sender_of:
        return None
    if sender_of.get("sender_type") not in (None, "user"):
        return None
    text = _text_of(_str(message.get("message_type")), _str(message.get("content")))
    if not text:
        return None
    is_direct = message.get("chat_type") == "p2p"
    mentioned: list[str] = []
    addressed = is_direct
    bot: str | None = None
    mentions = message.get("mentions")
    for mention in mentions if isinstance(mentions, list) else []:
        mention = _dict(mention)
        open_id = _str(_dict(mention.get("id")).get("open_id"))
        key = _str(mention.get("key"))
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
            text = text.replace(key, f"@{_str(mention.get('name')) or open_id}")
    if not addressed:
        return None
    sender = _str(_dict(sender_of.get("sender_id")).get("open_id"))
    if not sender:
        return None
    return InboundMessage(
        platform="feishu",
        workspace=_str(header.get("tenant_key")) or _str(sender_of.get("tenant_key")),
        channel=_str(message.get("chat_id")),
        sender=sender,
        text=" ".join(displayable(text).split()),  # no lone surrogate or control character
        event_id=_str(header.get("event_id")) or _str(message.get("message_id")),
        received_at=int(clock()),
        thread=_str(message.get("root_id")) or None if message.get("thread_id") else None,
        mentions=tuple(mentioned),
        is_direct=is_direct,
    )


def parse_card_action(
    payload: dict[str, Any], clock: Callable[[], float] = system_clock
) -> Action | None:
    """An `Action` for a button click on one of our cards (card.action.trigger, value
    ``{"action", "value"}``)."""
    event, header = _dict(payload.get("event")), _dict(payload.get("header"))
    operator, action = _dict(event.get("operator")), _dict(event.get("action"))
    value = _dict(action.get("value"))
    sender = _str(operator.get("open_id"))
    if not header or "action" not in value or not sender:
        return None
    context = _dict(event.get("context"))
    return Action(
        platform="feishu",
        workspace=_str(header.get("tenant_key")) or _str(operator.get("tenant_key")),
        action=str(value["action"]),
        value=str(value.get("value", "")),
        sender=sender,
        channel=_str(context.get("open_chat_id")),
        message_id=_str(context.get("open_message_id")),
        event_id=_str(header.get("event_id")),
        received_at=int(clock()),
        is_direct=value.get("direct") is True,
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
        answer = await events.handle_async(payload)
        # An event is answered as lark-oapi's dispatcher answers it; a callback with its JSON.
        return Response(
            json.dumps({"msg": "success"} if answer is None else answer),
            media_type="application/json",
        )

    add_webhook(app, "/feishu/events", receive)
    add_webhook(app, "/feishu/card", receive)


class _SdkEvents:
    """What lark-oapi's WebSocket client calls with each event frame's payload (in place of
    its dispatcher, which would import every API's event models)."""

    def __init__(self, events: FeishuEvents) -> None:
        self.events = events

    def _do_without_validation(self, payload: bytes) -> dict[str, Any] | None:
        # The connection was authenticated when it opened; frames carry plain JSON.
        parsed = json.loads(payload)
        return self.events.handle(parsed) if isinstance(parsed, dict) else None


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
        # lark-oapi (170 MB, seconds to import) only for a configured long connection.
        import lark_oapi.ws.client as ws_client
        from lark_oapi.core.enum import LogLevel

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        ws_client.loop = loop  # the module binds a loop at import: give it this thread's
        self._loop = loop
        self.client = ws_client.Client(
            self.app_id,
            self.app_secret,
            event_handler=_SdkEvents(self.events),
            domain=self.domain,
            log_level=LogLevel.WARNING,
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
