"""The FastAPI application, built by a function from settings (no import-time side effects)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI

from adapters import connect_platforms
from bot import api, metrics_api
from bot.chat.service import ChatService
from bot.runtime import Runtime, build_runtime
from bot.scheduler import Scheduler
from config.settings import Settings


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
    # Chat work runs after the platform's acknowledgement, in these threads.
    workers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="chat")
    chat = ChatService(
        runtime, {name: c.adapter for name, c in connections.items()}, workers=workers
    )

    scheduler = None
    if connections and runtime.settings.scheduler:
        scheduler = Scheduler(
            runtime.organisation,
            runtime.engine,
            chat.notifier,
            connections,
            alerts=chat.alerts,
            appeals=chat.appeals,
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        chat.start()
        for connection in connections.values():
            connection.start(chat.pipeline)
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
            for connection in connections.values():
                connection.stop()
            workers.shutdown(wait=True)
            chat.stop()
            if owned:
                runtime.engine.dispose()

    app = FastAPI(title="kpibot", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.chat = chat
    app.state.scheduler = scheduler
    app.include_router(api.router)
    app.include_router(metrics_api.router)
    for connection in connections.values():
        connection.mount(app, chat.pipeline)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app
