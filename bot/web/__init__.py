"""The dashboard (数据看板): role-scoped pages for people, teams and admins, opened from chat.

A person gets a signed one-time link privately in chat (`dashboard_link`); it opens a session
scoped to exactly what the access policy lets them see: their own page, their team's, and for
admins the company's, the outbox and the audit trail. Pages are rendered on the server (Jinja2)
and work without scripts; htmx and ECharts, shipped inside this package, make them quicker and
draw the charts. `mount(app, runtime, …)` adds it to the HTTP app.

The chat command "看板 / dashboard" and the 📊 buttons of cards answer with
`dashboard_link(runtime, person.id, now=…)`, privately.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from bot.features.dashboard.links import DashboardUnavailable, dashboard_link, link_key
from bot.web.pages import Pages
from bot.web.routes import Dashboard, build_router, install_handlers
from bot.web.security import PREFIX, RateLimiter, SecurityHeaders
from kpi_engine.figures import Figures
from kpi_engine.targets import Plans

if TYPE_CHECKING:
    from bot.compose import Bot
    from bot.runtime import Runtime

__all__ = ["DashboardUnavailable", "dashboard_link", "mount"]

HERE = Path(__file__).parent
# Link redemptions (and link pages) per client address per minute.
SIGN_IN_LIMIT = 10


def mount(app: FastAPI, runtime: Runtime, chat: Bot | None = None) -> None:
    """Add the dashboard's routes, static files and guards to `app`; the actions go through
    the chat side's own services, with the same rules and audit as in chat."""
    organisation = runtime.organisation
    alerts = chat.service("alerts") if chat is not None else None
    appeals = chat.service("appeals") if chat is not None else None
    secret = runtime.settings.secret_key
    key = link_key(secret.get_secret_value()) if secret and secret.get_secret_value() else None
    figures = alerts.figures if alerts is not None else Figures(runtime.engine, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    templates = Jinja2Templates(directory=HERE / "templates")
    app.state.dashboard = Dashboard(
        runtime=runtime,
        pages=Pages(organisation, figures, plans),
        templates=templates,
        limiter=RateLimiter(SIGN_IN_LIMIT, 60.0, runtime.clock),
        key=key,
        alerts=alerts,
        appeals=appeals,
        outbox=chat.outbox if chat is not None else None,
        notifier=chat.notifier if chat is not None else None,
    )
    https = runtime.settings.public_url.startswith("https://")
    app.add_middleware(SecurityHeaders, https=https)
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
    app.include_router(build_router())
    install_handlers(app)
