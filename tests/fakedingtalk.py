"""A fake DingTalk OpenAPI on 127.0.0.1, speaking the documented wire format.

Access tokens, robot group and one-to-one messages, interactive cards (create-and-deliver
deduplicated by `outTrackId`, update in place), media upload, custom group robots (checking the
`sign`), and the Stream gateway: `connections/open` hands out a WebSocket on which tests push
callback frames and read the client's ACK frames. Tests can queue error answers: DingTalk's
throttling (errcode 130101, gateway status 1111), quota and permission errors.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import websockets

from kpi_engine.clock import system_clock

CORP = "ding8f2a3b4c5d6e7f80"


@dataclass
class Posted:
    kind: str  # group, direct, card, custom
    to: str
    msg_key: str
    params: dict[str, Any]
    id: str


@dataclass
class Failure:
    status: int
    body: dict[str, Any]


@dataclass
class FakeDingTalk:
    """`with FakeDingTalk() as fake:`; point the adapter's api and oapi at `fake.url`."""

    robot_secret: str | None = None
    messages: list[Posted] = field(default_factory=list)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    card_updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    media: list[bytes] = field(default_factory=list)
    failures: deque[tuple[str, Failure]] = field(default_factory=deque)
    repeated_cards: int = 0
    tokens: set[str] = field(default_factory=set)
    acks: list[dict[str, Any]] = field(default_factory=list)
    # Every OpenAPI call's path and JSON body, as sent (to check against DingTalk's models).
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.ws_url: str | None = None
        self.ws_connected = threading.Event()

    def __enter__(self) -> FakeDingTalk:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ws_url is not None:  # close the server and its connections, then the loop
            self._ws_loop.call_soon_threadsafe(self._ws_stop.set_result, None)
            self._ws_thread.join(10)
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, kind: str, status: int, body: dict[str, Any]) -> None:
        """Answer the next `kind` call ("group", "direct", "card", "custom") with an error."""
        self.failures.append((kind, Failure(status, body)))

    def to(self, who: str) -> list[Posted]:
        with self.lock:
            return [m for m in self.messages if m.to == who]

    # -- Stream ------------------------------------------------------------------------------

    def start_stream(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._ws_loop = loop
        self._ws: Any = None

        async def handler(connection: Any) -> None:
            self._ws = connection
            self.ws_connected.set()
            async for raw in connection:
                with self.lock:
                    self.acks.append(json.loads(raw))

        async def main() -> None:
            # A client whose loop has stopped never answers the closing handshake: do not wait
            # the default 10 s for it.
            server = await websockets.serve(handler, "127.0.0.1", 0, close_timeout=0.5)
            port = next(iter(server.sockets)).getsockname()[1]
            self.ws_url = f"ws://127.0.0.1:{port}/connect"
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

    def push(self, topic: str, data: dict[str, Any], message_id: str | None = None) -> str:
        """A CALLBACK frame on `topic`, as the Stream gateway sends it; its message id."""
        message_id = message_id or f"frame-{next(self._ids)}"
        frame = {
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "appId": "fake-app",
                "connectionId": "fake-connection",
                "contentType": "application/json",
                "messageId": message_id,
                "time": str(int(system_clock() * 1000)),
                "topic": topic,
            },
            "data": json.dumps(data, ensure_ascii=False),
        }
        asyncio.run_coroutine_threadsafe(
            self._ws.send(json.dumps(frame, ensure_ascii=False)), self._ws_loop
        ).result(10)
        return message_id

    # -- the server --------------------------------------------------------------------------

    def _failure(self, kind: str) -> Failure | None:
        with self.lock:
            for i, (queued, failure) in enumerate(self.failures):
                if queued == kind:
                    del self.failures[i]
                    return failure
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _json(self) -> Any:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                return (
                    raw
                    if "multipart" in (self.headers.get("Content-Type") or "")
                    else json.loads(raw or b"{}")
                )

            def _token_ok(self) -> bool:
                if self.headers.get("x-acs-dingtalk-access-token") in fake.tokens:
                    return True
                self._answer(
                    401, {"code": "InvalidAuthentication", "message": "不合法的access_token"}
                )
                return False

            def _post(self, kind: str, to: str, msg_key: str, params: dict[str, Any]) -> None:
                failure = fake._failure(kind)
                if failure:
                    self._answer(failure.status, failure.body)
                    return
                key = f"pqk-{next(fake._ids)}"
                with fake.lock:
                    fake.messages.append(Posted(kind, to, msg_key, params, key))
                self._answer(200, {"processQueryKey": key})

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                path, query = parts.path, parse_qs(parts.query)
                body = self._json()
                if isinstance(body, dict):
                    with fake.lock:
                        fake.requests.append((path, body))
                if path == "/v1.0/oauth2/accessToken":
                    if body.get("appSecret") == "wrong":
                        self._answer(400, {"code": "invalidClientSecret", "message": "secret"})
                        return
                    token = f"dt-{next(fake._ids):06d}"
                    fake.tokens.add(token)
                    self._answer(200, {"accessToken": token, "expireIn": 7200})
                    return
                if path == "/v1.0/gateway/connections/open":
                    ok = body.get("clientSecret") != "wrong" and fake.ws_url
                    if not ok:
                        self._answer(401, {"code": "invalid", "message": "credentials"})
                        return
                    topics = {s["topic"] for s in body.get("subscriptions", [])}
                    assert "/v1.0/im/bot/messages/get" in topics
                    self._answer(200, {"endpoint": fake.ws_url, "ticket": "ticket-1"})
                    return
                if path == "/media/upload":
                    if (
                        query.get("access_token", [""])[0] not in fake.tokens
                        or b"\x89PNG" not in body
                    ):
                        self._answer(200, {"errcode": 40014, "errmsg": "invalid"})
                        return
                    with fake.lock:
                        fake.media.append(body)
                    self._answer(
                        200,
                        {
                            "errcode": 0,
                            "errmsg": "ok",
                            "type": "image",
                            "media_id": f"@lAD{len(fake.media)}",
                        },
                    )
                    return
                if path == "/robot/send":
                    if fake.robot_secret:
                        stamp = query.get("timestamp", ["0"])[0]
                        sign = (
                            unquote_plus(parts.query.split("sign=")[-1])
                            if "sign=" in parts.query
                            else ""
                        )
                        expected = base64.b64encode(
                            hmac.new(
                                fake.robot_secret.encode(),
                                f"{stamp}\n{fake.robot_secret}".encode(),
                                hashlib.sha256,
                            ).digest()
                        ).decode()
                        if sign != expected or abs(system_clock() * 1000 - int(stamp)) > 3600_000:
                            self._answer(200, {"errcode": 310000, "errmsg": "sign not match"})
                            return
                    failure = fake._failure("custom")
                    if failure:
                        self._answer(failure.status, failure.body)
                        return
                    with fake.lock:
                        fake.messages.append(
                            Posted(
                                "custom",
                                query.get("access_token", [""])[0],
                                body["msgtype"],
                                body,
                                "",
                            )
                        )
                    self._answer(200, {"errcode": 0, "errmsg": "ok"})
                    return
                if not self._token_ok():
                    return
                if path == "/v1.0/robot/groupMessages/send":
                    self._post(
                        "group",
                        body["openConversationId"],
                        body["msgKey"],
                        json.loads(body["msgParam"]),
                    )
                    return
                if path == "/v1.0/robot/oToMessages/batchSend":
                    assert len(body["userIds"]) <= 20
                    for user in body["userIds"]:
                        self._post("direct", user, body["msgKey"], json.loads(body["msgParam"]))
                    return
                if path == "/v1.0/card/instances/createAndDeliver":
                    failure = fake._failure("card")
                    if failure:
                        self._answer(failure.status, failure.body)
                        return
                    track = body["outTrackId"]
                    with fake.lock:
                        if track in fake.cards:
                            fake.repeated_cards += 1
                        else:
                            fake.cards[track] = body
                            space = body["openSpaceId"].split(".", 2)[-1]
                            fake.messages.append(
                                Posted(
                                    "card", space, "card", body["cardData"]["cardParamMap"], track
                                )
                            )
                    self._answer(200, {"success": True, "result": {"outTrackId": track}})
                    return
                self._answer(404, {"code": "NotFound", "message": path})

            def do_PUT(self) -> None:
                path = urlsplit(self.path).path
                body = self._json()
                with fake.lock:
                    fake.requests.append((path, body))
                if not self._token_ok():
                    return
                if path == "/v1.0/card/instances":
                    track = body["outTrackId"]
                    if track not in fake.cards:
                        self._answer(404, {"code": "resource.not.found", "message": "card"})
                        return
                    with fake.lock:
                        fake.card_updates.append((track, body["cardData"]["cardParamMap"]))
                    self._answer(200, {"success": True})
                    return
                self._answer(404, {"code": "NotFound", "message": path})

        return Handler
