"""The chat platforms' webhooks, taken before FastAPI's routing.

A webhook's work is small (verify, record, acknowledge) and its deadline short (Slack's 3 s,
under load: issue 20's ack p99 ≤ 100 ms), so its request does not go through FastAPI's
router, dependency solving and exception wrapping, which cost more than the work itself
(bench/README.md, "Webhooks"). `Webhooks` is plain ASGI middleware in front of the router: a
POST to a registered path goes straight to its handler, a Starlette `Request` in and a
`Response` out; everything else passes through untouched. The same handlers are also FastAPI
routes, so any other method on those paths is answered as before (405).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")
# Threads for a webhook's blocking part (verifying against the database, recording): as many
# as deliveries may be in flight at once, each mostly waiting for its batch to commit.
THREADS = 64
_threads: ThreadPoolExecutor | None = None
_threads_lock = threading.Lock()


async def off_loop(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a webhook thread, awaited: the event loop goes on meanwhile. A plain
    executor rather than `run_in_threadpool`, whose capacity limiter and cancel scopes cost
    more per call than recording a delivery (no context is carried over: nothing the
    handlers call needs one)."""
    global _threads
    if _threads is None:
        with _threads_lock:
            if _threads is None:
                _threads = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="webhook")
    return await asyncio.get_running_loop().run_in_executor(_threads, function, *args)


class Webhooks:
    """ASGI middleware: POSTs to the registered webhook paths go straight to their handlers."""

    def __init__(self, app: ASGIApp, *, routes: dict[str, Handler]) -> None:
        self.app = app
        self.routes = routes  # filled as the platforms are mounted (read per request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.routes.get(scope["path"])
            if handler is not None:
                response = await handler(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def add_webhook(app: FastAPI, path: str, handler: Handler) -> None:
    """`POST path` answered by `handler` through the lane (put in front of `app`'s routes by
    the first webhook), and as a route for other methods."""
    if not hasattr(app.state, "webhooks"):
        app.state.webhooks = {}
        app.add_middleware(Webhooks, routes=app.state.webhooks)
    app.state.webhooks[path] = handler
    app.add_api_route(path, handler, methods=["POST"], include_in_schema=False)
