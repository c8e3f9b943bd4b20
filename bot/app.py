"""The FastAPI application, built by a function from settings (no import-time side effects)."""

from __future__ import annotations

from fastapi import FastAPI

from bot import api, metrics_api
from bot.runtime import Runtime, build_runtime
from config.settings import Settings


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Wire the runtime into a FastAPI app with the health and API routes."""
    runtime = runtime or build_runtime(settings or Settings())
    app = FastAPI(title="kpibot", version="0.1.0")
    app.state.runtime = runtime
    app.include_router(api.router)
    app.include_router(metrics_api.router)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app
