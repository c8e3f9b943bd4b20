"""The dashboard from chat: "看板 / dashboard" (or 📊 on a card) answers privately with a signed
link for the asker alone, valid for minutes and once (bot/features/dashboard/links.py)."""

from __future__ import annotations

from bot.chat.context import Context
from bot.chat.effects import Result
from bot.chat.messages import Action, Reply
from bot.chat.registry import Command, Feature, Registry
from bot.chat.request import Request
from bot.core import Core
from bot.features.dashboard.links import DashboardUnavailable, dashboard_link

OPEN = "dashboard.open"  # the 📊 button's action


def link_reply(ctx: Context) -> Reply:
    """The asker's own link, privately; or why there is none."""
    try:
        url = dashboard_link(ctx.core.runtime, ctx.asker.id, now=ctx.now)
    except DashboardUnavailable:
        return Reply(ctx.t("dashboard.unavailable"), ctx.language, private=True)
    minutes = ctx.core.runtime.settings.dashboard_link_minutes
    return Reply(ctx.t("dashboard.link", url=url, minutes=minutes), ctx.language, private=True)


def handle_dashboard(ctx: Context, request: Request) -> Result:
    """A signed, one-time link to the asker's dashboard."""
    return Result(link_reply(ctx))


def install(registry: Registry, core: Core) -> None:
    """Register the command and the 📊 button."""

    def on_click(action: Action, ctx: Context) -> Result | None:
        return Result(link_reply(ctx))

    registry.command(Command("dashboard", "dashboard", handle_dashboard, 7))
    registry.action(OPEN, on_click)


FEATURE = Feature("dashboard", install)
