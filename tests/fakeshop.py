"""The common part of the fake shop platforms: an HTTP server on 127.0.0.1 that records every
request, answers from the platform's handler, and can be scripted to fail (a 429 with its
wait, a 5xx) a number of times. Each platform's fake (faketiktok, fakeshopee, fakeamazon)
speaks its documented wire format and checks its signature with code written from the docs,
not with the connector's."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Failure:
    answer: Answer
    times: int


class FakeShopServer:
    """Subclasses implement `answer(request)`; use as a context manager."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.requests: list[Request] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._lock = threading.RLock()
        self._http: ThreadingHTTPServer | None = None

    def __enter__(self) -> Any:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake._serve(self, "GET")

            def do_POST(self) -> None:
                fake._serve(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    @property
    def url(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def now(self) -> int:
        return int(self.clock())

    def fail(
        self,
        path: str,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` requests to `path` get this answer instead (after being recorded)."""
        with self._lock:
            self._failures.setdefault(path, []).append(
                _Failure(Answer(status, body, headers or {}), times)
            )

    def to(self, path: str) -> list[Request]:
        """The requests to `path` so far."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def answer(self, request: Request) -> Answer:
        raise NotImplementedError

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        parts = urllib.parse.urlsplit(handler.path)
        query = {
            k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()
        }
        request = Request(
            method, parts.path, query, {k.lower(): v for k, v in handler.headers.items()}, body
        )
        with self._lock:
            self.requests.append(request)
            failure = None
            queue = self._failures.get(parts.path)
            if queue:
                failure = queue[0]
                failure.times -= 1
                if failure.times <= 0:
                    queue.pop(0)
        try:
            answer = failure.answer if failure is not None else self.answer(request)
        except Exception as exc:  # a bug in the fake: say so loudly
            answer = Answer(500, {"fake_error": repr(exc)})
        payload = (
            json.dumps(answer.body).encode() if not isinstance(answer.body, bytes) else answer.body
        )
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for key, value in answer.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)
