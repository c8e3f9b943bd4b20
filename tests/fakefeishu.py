"""A fake Feishu Open API on 127.0.0.1, speaking the documented wire format.

It issues tenant tokens and checks them, keeps the messages the bot posts (create, reply in
thread, only-visible-to-you cards), card updates and uploaded images, deduplicates sends by
their `uuid` as Feishu does, and can enforce the send limits (5/s per chat or user, 50/s per
app) with Feishu's throttle answer: HTTP 429, code 99991400, `x-ogw-ratelimit-reset`. Tests can
queue error answers for the next calls. It also serves the long connection's endpoint
discovery and a WebSocket that pushes event frames in lark-oapi's protobuf format.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import websockets
from lark_oapi.ws.pb.pbbp2_pb2 import Frame

from kpi_engine.clock import system_clock

BOT_OPEN_ID = "ou_bot0000000000000000000000000000"
TENANT = "736588c9260f175d"


@dataclass
class Posted:
    """A message the bot posted."""

    message_id: str
    chat_id: str
    receive_id: str
    receive_id_type: str
    msg_type: str
    content: dict[str, Any]
    uuid: str | None
    reply_to: str | None = None
    ephemeral_for: str | None = None
    at: float = 0.0


@dataclass
class Failure:
    status: int
    code: int
    msg: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeFeishu:
    """Start with `with FakeFeishu() as fake:`; point the SDK at `fake.url`."""

    def __init__(
        self,
        *,
        per_chat: float | None = None,
        per_app: float | None = None,
        latency: float = 0.0,
        port: int = 0,
    ) -> None:
        self.per_chat = per_chat
        self.per_app = per_app
        # Seconds between accepting a message and answering: the window in which a sender that
        # dies has had its message posted without hearing so.
        self.latency = latency
        self.lock = threading.Lock()
        self.messages: list[Posted] = []
        self.by_uuid: dict[str, Posted] = {}
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.images: list[bytes] = []
        self.calls: list[tuple[str, str]] = []
        self.throttled = 0
        self.repeated_uuids = 0
        self.ephemeral_in_direct_chats = 0
        self.failures: deque[tuple[str, Failure]] = deque()
        self.tokens: set[str] = set()
        self._ids = itertools.count(1)
        self._window: dict[str, deque[float]] = defaultdict(deque)
        self.ws_url: str | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- control -----------------------------------------------------------------------------

    def __enter__(self) -> FakeFeishu:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ws_url is not None:  # close the server and its connections, then the loop
            self._ws_loop.call_soon_threadsafe(self._ws_stop.set_result, None)
            self._ws_thread.join(10)
        self._server.shutdown()
        self._server.server_close()

    def fail_next(
        self, kind: str, status: int, code: int, msg: str, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next `kind` call ("send", "patch", "image", "ephemeral") with an error."""
        self.failures.append((kind, Failure(status, code, msg, headers or {})))

    def posted_to(self, receive_id: str) -> list[Posted]:
        """Messages posted to a chat or a user."""
        with self.lock:
            return [m for m in self.messages if receive_id in (m.receive_id, m.chat_id)]

    # -- the long connection ----------------------------------------------------------------

    def start_long_connection(self) -> None:
        """Serve the WebSocket that `/callback/ws/endpoint` hands out."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._ws_loop = loop
        self._ws_conn: Any = None
        self.ws_connected = threading.Event()
        self.ws_answers: list[dict[str, Any]] = []

        async def handler(connection: Any) -> None:
            self._ws_conn = connection
            self.ws_connected.set()
            async for raw in connection:
                frame = Frame()
                frame.ParseFromString(raw)
                if frame.method == 1:  # a DATA frame: the client's answer to an event
                    with self.lock:
                        self.ws_answers.append(json.loads(frame.payload))

        async def main() -> None:
            # A client whose loop has stopped never answers the closing handshake: do not wait
            # the default 10 s for it.
            server = await websockets.serve(handler, "127.0.0.1", 0, close_timeout=0.5)
            port = next(iter(server.sockets)).getsockname()[1]
            self.ws_url = f"ws://127.0.0.1:{port}/ws?device_id=fake-device&service_id=7"
            ready.set()
            await self._ws_stop
            server.close()
            await server.wait_closed()

        def run() -> None:
            loop.run_until_complete(main())
            loop.close()

        self._ws_stop: asyncio.Future[None] = loop.create_future()
        self._ws_thread = threading.Thread(target=run, daemon=True)
        self._ws_thread.start()
        ready.wait(10)

    def push(self, payload: dict[str, Any]) -> None:
        """Push an event over the long connection, as a protobuf DATA frame (type "event")."""
        frame = Frame()
        frame.SeqID = 1
        frame.LogID = 1
        frame.service = 7
        frame.method = 1
        headers = {
            "type": "event",
            "message_id": f"msg-{next(self._ids)}",
            "sum": "1",
            "seq": "0",
            "trace_id": "trace",
        }
        for key, value in headers.items():
            header = frame.headers.add()
            header.key = key
            header.value = value
        frame.payload = json.dumps(payload, ensure_ascii=False).encode()
        asyncio.run_coroutine_threadsafe(
            self._ws_conn.send(frame.SerializeToString()), self._ws_loop
        ).result(10)

    # -- the server --------------------------------------------------------------------------

    def _failure(self, kind: str) -> Failure | None:
        with self.lock:
            for i, (queued, failure) in enumerate(self.failures):
                if queued == kind:
                    del self.failures[i]
                    return failure
        return None

    def _throttle(self, chat: str, now: float) -> float | None:
        """Seconds to wait when a send now would exceed a limit; else counts it."""
        with self.lock:
            keys = []
            if self.per_chat:
                keys.append((f"chat:{chat}", self.per_chat))
            if self.per_app:
                keys.append(("app", self.per_app))
            wait = 0.0
            for key, rate in keys:
                window = self._window[key]
                while window and window[0] <= now - 1.0:
                    window.popleft()
                if len(window) >= rate:
                    wait = max(wait, window[0] + 1.0 - now)
            if wait > 0:
                self.throttled += 1
                return wait
            for key, _ in keys:
                self._window[key].append(now)
            return None

    def _post(
        self,
        *,
        receive_id: str,
        receive_id_type: str,
        chat_id: str,
        msg_type: str,
        content: str,
        uuid: str | None,
        reply_to: str | None = None,
        ephemeral_for: str | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        failure = self._failure("ephemeral" if ephemeral_for else "send")
        if failure:
            return failure.status, {"code": failure.code, "msg": failure.msg}, failure.headers
        try:
            parsed = json.loads(content)
        except ValueError:
            return 400, {"code": 230001, "msg": "invalid message content"}, {}
        if msg_type == "interactive" and not (
            parsed.get("schema") == "2.0"
            and isinstance(parsed.get("body", {}).get("elements"), list)
        ):
            return 400, {"code": 230099, "msg": "card JSON 2.0 expected"}, {}
        with self.lock:
            if uuid and uuid in self.by_uuid:
                self.repeated_uuids += 1
                return 200, self._message_answer(self.by_uuid[uuid]), {}
        wait = self._throttle(chat_id, time.monotonic())
        if wait is not None:
            reset = str(max(1, math.ceil(wait)))
            return (
                429,
                {"code": 99991400, "msg": "request trigger frequency limit"},
                {
                    "x-ogw-ratelimit-limit": str(int(self.per_chat or self.per_app or 0)),
                    "x-ogw-ratelimit-reset": reset,
                },
            )
        with self.lock:
            if uuid and uuid in self.by_uuid:  # a concurrent twin got in first
                self.repeated_uuids += 1
                return 200, self._message_answer(self.by_uuid[uuid]), {}
            message = Posted(
                message_id=f"om_{next(self._ids):08d}",
                chat_id=chat_id,
                receive_id=receive_id,
                receive_id_type=receive_id_type,
                msg_type=msg_type,
                content=parsed,
                uuid=uuid,
                reply_to=reply_to,
                ephemeral_for=ephemeral_for,
                at=time.monotonic(),
            )
            self.messages.append(message)
            if uuid:
                self.by_uuid[uuid] = message
        if self.latency:
            time.sleep(self.latency)
        return 200, self._message_answer(message), {}

    @staticmethod
    def _message_answer(message: Posted) -> dict[str, Any]:
        return {
            "code": 0,
            "msg": "success",
            "data": {
                "message_id": message.message_id,
                "root_id": message.reply_to or "",
                "parent_id": message.reply_to or "",
                "thread_id": "omt_" + message.reply_to[3:] if message.reply_to else "",
                "msg_type": message.msg_type,
                "create_time": str(int(system_clock() * 1000)),
                "update_time": str(int(system_clock() * 1000)),
                "deleted": False,
                "updated": False,
                "chat_id": message.chat_id,
                "sender": {
                    "id": "cli_fake",
                    "id_type": "app_id",
                    "sender_type": "app",
                    "tenant_key": TENANT,
                },
                "body": {"content": json.dumps(message.content, ensure_ascii=False)},
            },
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorised(self) -> bool:
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                if token not in fake.tokens:
                    self._answer(
                        400, {"code": 99991663, "msg": "Invalid access token for authorization"}
                    )
                    return False
                return True

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                fake.calls.append(("GET", path))
                if path == "/open-apis/bot/v3/info":
                    if self._authorised():
                        self._answer(
                            200,
                            {
                                "code": 0,
                                "msg": "ok",
                                "bot": {
                                    "open_id": BOT_OPEN_ID,
                                    "app_name": "kpibot",
                                    "activate_status": 2,
                                },
                            },
                        )
                    return
                self._answer(404, {"code": 404, "msg": "not found"})

            def do_PATCH(self) -> None:
                path = urlsplit(self.path).path
                fake.calls.append(("PATCH", path))
                body = self._body()
                if not self._authorised():
                    return
                message_id = path.rsplit("/", 1)[-1]
                failure = fake._failure("patch")
                if failure:
                    self._answer(
                        failure.status, {"code": failure.code, "msg": failure.msg}, failure.headers
                    )
                    return
                with fake.lock:
                    known = any(m.message_id == message_id for m in fake.messages)
                if not known:
                    self._answer(
                        400, {"code": 230011, "msg": "The message was withdrawn or not found"}
                    )
                    return
                content = json.loads(json.loads(body)["content"])
                with fake.lock:
                    fake.patches.append((message_id, content))
                self._answer(200, {"code": 0, "msg": "success", "data": {}})

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                path, query = parts.path, parse_qs(parts.query)
                fake.calls.append(("POST", path))
                body = self._body()
                if path == "/open-apis/auth/v3/tenant_access_token/internal":
                    request = json.loads(body)
                    if not request.get("app_id") or request.get("app_secret") == "wrong":
                        self._answer(200, {"code": 10014, "msg": "app secret invalid"})
                        return
                    token = f"t-{next(fake._ids):06d}"
                    fake.tokens.add(token)
                    self._answer(
                        200, {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": 7200}
                    )
                    return
                if path == "/callback/ws/endpoint":
                    self._answer(
                        200,
                        {
                            "code": 0,
                            "msg": "ok",
                            "data": {
                                "URL": fake.ws_url,
                                "ClientConfig": {
                                    "ReconnectCount": -1,
                                    "ReconnectInterval": 1,
                                    "ReconnectNonce": 0,
                                    "PingInterval": 120,
                                },
                            },
                        },
                    )
                    return
                if not self._authorised():
                    return
                if path == "/open-apis/im/v1/images":
                    failure = fake._failure("image")
                    if failure:
                        self._answer(
                            failure.status,
                            {"code": failure.code, "msg": failure.msg},
                            failure.headers,
                        )
                        return
                    if b"\x89PNG" not in body or b'name="image_type"' not in body:
                        self._answer(400, {"code": 234001, "msg": "invalid image"})
                        return
                    with fake.lock:
                        fake.images.append(body)
                        key = f"img_v3_{len(fake.images):04d}"
                    self._answer(200, {"code": 0, "msg": "success", "data": {"image_key": key}})
                    return
                request = json.loads(body)
                if path == "/open-apis/im/v1/messages":
                    id_type = query.get("receive_id_type", [""])[0]
                    receive_id = request["receive_id"]
                    chat = receive_id if id_type == "chat_id" else f"oc_p2p_{receive_id}"
                    status, answer, headers = fake._post(
                        receive_id=receive_id,
                        receive_id_type=id_type,
                        chat_id=chat,
                        msg_type=request["msg_type"],
                        content=request["content"],
                        uuid=request.get("uuid"),
                    )
                    self._answer(status, answer, headers)
                    return
                if path.startswith("/open-apis/im/v1/messages/") and path.endswith("/reply"):
                    parent = path.split("/")[-2]
                    with fake.lock:
                        original = next((m for m in fake.messages if m.message_id == parent), None)
                    chat = original.chat_id if original else request.get("chat_id", "oc_unknown")
                    status, answer, headers = fake._post(
                        receive_id=chat,
                        receive_id_type="chat_id",
                        chat_id=chat,
                        msg_type=request["msg_type"],
                        content=request["content"],
                        uuid=request.get("uuid"),
                        reply_to=parent,
                    )
                    self._answer(status, answer, headers)
                    return
                if path == "/open-apis/ephemeral/v1/send":
                    if request["chat_id"].startswith("oc_p2p_"):
                        # Only-visible-to-you cards are for groups (the API's documentation).
                        with fake.lock:
                            fake.ephemeral_in_direct_chats += 1
                        self._answer(400, {"code": 99992402, "msg": "chat is not a group"}, {})
                        return
                    status, answer, headers = fake._post(
                        receive_id=request["chat_id"],
                        receive_id_type="chat_id",
                        chat_id=request["chat_id"],
                        msg_type=request["msg_type"],
                        content=json.dumps(request["card"]),
                        uuid=None,
                        ephemeral_for=request["open_id"],
                    )
                    if status == 200:
                        answer = {
                            "code": 0,
                            "msg": "ok",
                            "data": {"message_id": answer["data"]["message_id"]},
                        }
                    self._answer(status, answer, headers)
                    return
                self._answer(404, {"code": 404, "msg": "not found"})

        return Handler
