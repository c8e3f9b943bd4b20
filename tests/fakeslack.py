"""A local fake of Slack for tests: the Web API on 127.0.0.1 (the methods the bot calls, in
Slack's wire format, recording every call; scripted failures such as a 429 with Retry-After
or an error code; calls that can be held mid-flight), the upload URL of files_upload_v2, and
a Socket Mode WebSocket server. Plus signed inbound requests built like Slack builds them."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from kpi_engine.clock import system_clock

BOT_TOKEN = "xoxb-1234-5678-fakebottoken"
APP_TOKEN = "xapp-1-A0KPIBOT-1-fakeapptoken"
BOT_USER = "U0KPIBOT"
BOT_ID = "B0KPIBOT"
TEAM = "T0GALAXY"
APP_ID = "A0KPIBOT"


@dataclass
class Call:
    """One Web API call as the fake received it."""

    method: str
    params: dict[str, Any]
    token: str | None


@dataclass
class Failure:
    status: int
    error: str | None
    headers: dict[str, str]
    times: int


@dataclass
class FakeSlack:
    """The fake Web API (and Socket Mode server) on loopback; use as a context manager."""

    token: str = BOT_TOKEN
    app_token: str = APP_TOKEN
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    socket_acks: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._failures: dict[str, list[Failure]] = {}
        self._holds: dict[str, threading.Event] = {}
        self._ts = itertools.count(1)
        self._sockets: list[ServerConnection] = []
        self._http: ThreadingHTTPServer | None = None
        self._ws: Server | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self._ws = serve(self._socket_session, "127.0.0.1", 0)
        threading.Thread(target=self._ws.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for event in self._holds.values():
            event.set()
        if self._ws is not None:
            self._ws.shutdown()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    @property
    def url(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What KPIBOT_SLACK_API_URL points at."""
        return f"{self.url}/api/"

    # -- scripting --------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        error: str | None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` fail: HTTP `status` with `{"ok": false, error}`
        (or a non-JSON body when `error` is None)."""
        with self._lock:
            self._failures.setdefault(method, []).append(
                Failure(status, error, headers or {}, times)
            )

    def hold(self, method: str) -> threading.Event:
        """Calls of `method` wait (after being recorded) until the returned event is set."""
        event = threading.Event()
        self._holds[method] = event
        return event

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every call of `method` so far."""
        with self._lock:
            return [c.params for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Block until `method` was called `count` times (failing the test after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while sum(c.method == method for c in self.calls) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{method} called {sum(c.method == method for c in self.calls)} times, "
                        f"expected {count}; calls: {[c.method for c in self.calls]}"
                    )
                self._lock.wait(left)
        return self.calls_to(method)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        """Block until `condition()` holds (failing the test after `timeout`). It is checked after
        every call and every 50 ms besides: it may depend on something a call does not signal,
        such as the outbox row the sender marks sent after Slack has answered."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"still not so; calls: {[c.method for c in self.calls]}")
                self._lock.wait(min(left, 0.05))

    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    # -- the Web API --------------------------------------------------------------------------

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        path = urllib.parse.urlsplit(request.path)
        if path.path.startswith("/upload/"):  # files_upload_v2 step 2: the bytes
            with self._lock:
                self.uploads[path.path.rsplit("/", 1)[1]] = raw
                self._lock.notify_all()
            self._reply(request, 200, b"OK - %d" % len(raw), "text/plain")
            return
        method = path.path.removeprefix("/api/")
        params: dict[str, Any] = {k: v[0] for k, v in urllib.parse.parse_qs(path.query).items()}
        content_type = request.headers.get("Content-Type") or ""
        if content_type.startswith("application/json"):
            params.update(json.loads(raw or b"{}"))
        elif raw:
            params.update({k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()})
        authorization = request.headers.get("Authorization") or ""
        token = authorization.removeprefix("Bearer ") if authorization else params.get("token")
        with self._lock:
            self.calls.append(Call(method, params, token))
            self._lock.notify_all()
            failure = None
            queue = self._failures.get(method)
            if queue:
                failure = queue[0]
                failure.times -= 1
                if failure.times <= 0:
                    queue.pop(0)
        hold = self._holds.get(method)
        if hold is not None:
            hold.wait(30)
        if failure is not None:
            body = (
                json.dumps({"ok": False, "error": failure.error}).encode()
                if failure.error is not None
                else b"<html>Bad Gateway</html>"
            )
            kind = "application/json" if failure.error is not None else "text/html"
            self._reply(request, failure.status, body, kind, failure.headers)
            return
        expected = self.app_token if method == "apps.connections.open" else self.token
        if token != expected:
            self._reply(request, 200, json.dumps({"ok": False, "error": "invalid_auth"}).encode())
            return
        answer = self._answer(method, params)
        self._reply(request, 200, json.dumps(answer, ensure_ascii=False).encode())

    def _next_ts(self) -> str:
        return f"{int(system_clock())}.{next(self._ts):06d}"

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://galaxy.slack.com/",
                "team": "Galaxy",
                "user": "kpibot",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            ts = self._next_ts()
            message = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "ts": ts}
            message.update({k: params[k] for k in ("text", "blocks", "thread_ts") if k in params})
            return {"ok": True, "channel": params["channel"], "ts": ts, "message": message}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "chat.update":
            return {"ok": True, "channel": params["channel"], "ts": params["ts"], "text": ""}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(params["users"])[1:]}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):08d}"
            return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = json.loads(params["files"])
            return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in files]}
        if method == "apps.connections.open":
            assert self._ws is not None
            port = self._ws.socket.getsockname()[1]
            return {"ok": True, "url": f"ws://127.0.0.1:{port}/link/?ticket=fake"}
        return {"ok": False, "error": "unknown_method"}

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", f"{content_type}; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)

    # -- Socket Mode --------------------------------------------------------------------------

    def _socket_session(self, connection: ServerConnection) -> None:
        with self._lock:
            self._sockets.append(connection)
            self._lock.notify_all()
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        try:
            for message in connection:
                with self._lock:
                    self.socket_acks.append(json.loads(message))
                    self._lock.notify_all()
        except ConnectionClosed:
            pass  # the bot closed the socket without a closing handshake (it is stopping)

    def wait_for_socket(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._sockets:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the bot did not open a Socket Mode connection")
                self._lock.wait(left)

    def push(self, envelope: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
        """Send an envelope over the socket; the bot's acknowledgement of it."""
        self.wait_for_socket(timeout)
        self._sockets[-1].send(json.dumps(envelope, ensure_ascii=False))
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for ack in self.socket_acks:
                    if ack.get("envelope_id") == envelope["envelope_id"]:
                        return ack
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"envelope {envelope['envelope_id']} was not acknowledged")
                self._lock.wait(left)


# -- signed inbound requests, as Slack sends them -----------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Slack's v0 signature of a request body."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, body: bytes, content_type: str, *, timestamp: int | None = None
) -> dict[str, str]:
    timestamp = int(system_clock()) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": sign(secret, timestamp, body),
    }


def event_body(event: dict[str, Any], event_id: str, *, event_time: int | None = None) -> bytes:
    """An Events API `event_callback` envelope around `event` (as in Slack's docs)."""
    return json.dumps(
        {
            "token": "XXYYZZ",
            "team_id": TEAM,
            "context_team_id": TEAM,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": event_time or int(system_clock()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM,
                    "user_id": BOT_USER,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIiwidGlkIjoiVDBHQUxBWFkifQ",
        },
        ensure_ascii=False,
    ).encode()


def form_body(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()


def counter(prefix: str) -> Callable[[], str]:
    numbers: Iterator[int] = itertools.count(1)
    return lambda: f"{prefix}{next(numbers):06d}"
