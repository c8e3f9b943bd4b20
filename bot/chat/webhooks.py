"""The chat platforms' webhooks, taken before FastAPI's routing.

A webhook's work is small (verify, record, acknowledge) and its deadline short (Slack's 3 s,
under load: issue 20's ack p99 ≤ 100 ms), so its request does not go through FastAPI's
router, dependency solving and exception wrapping, which cost more than the work itself
(bench/README.md, "Webhooks"). `Webhooks` is plain ASGI middleware, the outermost of the app's
own: a POST to a registered path goes straight to its handler, a Starlette `Request` in and a
`Response` out; everything else passes through untouched. The same handlers are also FastAPI
routes, so any other method on those paths is answered as before (405).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]


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


def serve_webhooks(app: FastAPI) -> None:
    """Put the webhook lane in front of `app`'s routes (once; `add_webhook` fills it)."""
    if not hasattr(app.state, "webhooks"):
        app.state.webhooks = {}
        app.add_middleware(Webhooks, routes=app.state.webhooks)


def add_webhook(app: FastAPI, path: str, handler: Handler) -> None:
    """`POST path` answered by `handler` through the lane (and as a route for other methods)."""
    serve_webhooks(app)
    app.state.webhooks[path] = handler
    app.add_api_route(path, handler, methods=["POST"], include_in_schema=False)
