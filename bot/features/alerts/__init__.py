"""Alerts: the evaluation job, cards with Ack / Snooze / Not a problem, text commands
("确认 42", "snooze 42 2h"), the list of open alerts, escalation up the management chain."""

from __future__ import annotations

from dataclasses import replace

from bot.chat.context import Context
from bot.chat.effects import Result
from bot.chat.messages import Action, Reply
from bot.chat.registry import Command, Feature, Registry
from bot.chat.request import Request
from bot.core import Core
from bot.features.alerts.service import ALERT_ACTIONS, AlertService
from bot.jobs import JobKind, every

ALERTS_EVERY = 5 * 60  # alert rules are evaluated (and escalations checked) this often


def install(registry: Registry, core: Core) -> AlertService:
    """Register the alert commands, buttons and job; the service for the other features."""
    service = AlertService(
        core.organisation,
        core.engine,
        core.figures,
        core.plans,
        core.notifier,
        list(core.platforms),
        access=core.access,
    )

    def handle_alerts(ctx: Context, request: Request) -> Result:
        """The open alerts the asker may act on (or why there are none)."""
        if service.rules:
            summary = service.summary(ctx.asker, ctx.language)
            return Result(replace(summary, private=not ctx.where.is_direct))
        return Result(
            Reply(ctx.t("alerts.no_rules"), ctx.language, private=not ctx.where.is_direct)
        )

    def handle_alert_action(ctx: Context, request: Request) -> Result:
        """Acknowledge, snooze, mark not a problem, or resolve an alert by its number."""
        if request.verb is None or request.number is None:
            return Result(Reply(ctx.t("help.alert_action.example"), ctx.language))
        outcome = service.act(
            ctx.asker,
            request.number,
            request.verb,
            ctx.now,
            snooze=(request.text or None) if request.verb == "snooze" else None,
            note=(request.text or None) if request.verb == "ack" else None,
            language=ctx.language,
        )
        return Result(outcome.reply, outcome.effects)

    def on_click(action: Action, ctx: Context) -> Result | None:
        return service.on_action(action, ctx.asker, ctx.now)

    registry.command(Command("alert_action", "alerts", handle_alert_action, 1, needs_number=True))
    registry.command(Command("alerts", "alerts", handle_alerts, 30))
    for action_id in ALERT_ACTIONS:
        registry.action(action_id, on_click)
    if core.organisation.alerts:
        # A missed round is not worth catching up: the next one looks at the same figures.
        registry.job(
            JobKind(
                "alerts",
                every("alerts", ALERTS_EVERY, grace=ALERTS_EVERY),
                lambda job, nominal, delayed: service.run(nominal),
            )
        )
    return service


FEATURE = Feature("alerts", install)
