"""The FastAPI application, built by a function from settings (no import-time side effects)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bot import api, metrics_api
from bot.runtime import Runtime, build_runtime
from config.settings import Settings


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Wire the runtime into a FastAPI app with the health and API routes.

    A runtime built here is closed (its database pool disposed) when the app shuts down; one
    passed in belongs to the caller.
    """
    owned = runtime is None
    runtime = runtime or build_runtime(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            runtime.engine.dispose()

    app = FastAPI(title="kpibot", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.include_router(api.router)
    app.include_router(metrics_api.router)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app
