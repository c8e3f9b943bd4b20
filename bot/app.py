"""The FastAPI application, built by a function from settings (no import-time side effects)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from adapters import connect_platforms
from bot import api, metrics_api, oauth_routes, web
from bot.compose import Bot, compose
from bot.runtime import Runtime, build_runtime
from config.settings import Settings

if TYPE_CHECKING:
    from adapters import Connection
    from connectors.sync import SyncService


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Wire the runtime into a FastAPI app with the health, API and chat webhook routes.

    Every chat platform whose credentials are set is connected: its webhook routes are mounted
    here and its long connection (if configured) runs while the app does. A runtime built here
    is closed (its database pool disposed) when the app shuts down; one passed in belongs to
    the caller.
    """
    owned = runtime is None
    runtime = runtime or build_runtime(settings or Settings())
    connections = connect_platforms(runtime.settings)
    # Chat work runs after the platform's acknowledgement, in these threads (or, with
    # KPIBOT_CHAT_QUEUE, in `kpibot worker` processes).
    workers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="chat")
    chat, shop_sync = build_chat(runtime, connections, workers=workers)
    # Digests and checks fire when a chat platform is connected (and the settings allow).
    firing = bool(connections) and runtime.settings.scheduler

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        chat.start(scheduler=firing)
        chat.pipeline.start()  # deliveries a crashed process left unanswered
        for connection in connections.values():
            connection.start(chat.pipeline)
        try:
            yield
        finally:
            for connection in connections.values():
                connection.stop()
            workers.shutdown(wait=True)
            chat.pipeline.stop()
            chat.stop()
            if owned:
                runtime.engine.dispose()

    # The API's documentation is for callers with a key: shown only when enabled.
    docs = runtime.settings.api_docs
    app = FastAPI(
        title="kpibot",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.runtime = runtime
    app.state.chat = chat
    app.state.scheduler = chat.scheduler
    app.include_router(api.router)
    app.include_router(metrics_api.router)
    app.state.shop_sync = shop_sync
    app.include_router(oauth_routes.router)
    for connection in connections.values():
        connection.mount(app, chat.pipeline)
    web.mount(app, runtime, chat)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app


def build_chat(
    runtime: Runtime, connections: Mapping[str, Connection], *, workers: Executor | None = None
) -> tuple[Bot, SyncService | None]:
    """The chat side on the connected platforms, with the shop sync as a service (the web
    process and `kpibot worker` answer alike)."""
    shop_sync = _shop_sync(runtime)
    chat = compose(
        runtime,
        {name: c.adapter for name, c in connections.items()},
        workers=workers,
        services={"shop_sync": shop_sync} if shop_sync else None,
    )
    if shop_sync is not None:
        from bot.shop_sync import revoked_notice

        shop_sync.on_revoked = revoked_notice(runtime.organisation, chat.notifier)
    return chat, shop_sync


def _shop_sync(runtime: Runtime) -> SyncService | None:
    from bot.shop_sync import shop_sync
    from connectors.clock import SystemClock

    return shop_sync(runtime.engine, runtime.organisation, clock=SystemClock(runtime.clock))
