"""Appeals: a disputed number raised in chat ("申诉 昨天GMV 应该是12000"), reviewed in a
thread with the reviewer mentioned, decided by buttons or text, corrections recorded, SLA
reminders."""

from __future__ import annotations

from bot.chat.context import Context
from bot.chat.effects import Result
from bot.chat.messages import Action, Reply
from bot.chat.registry import Command, Feature, Registry
from bot.chat.request import Request
from bot.core import Core
from bot.features.appeals.service import APPEAL_ACTIONS, AppealService
from bot.jobs import JobKind, every
from kpi_engine.scopes import Scope

APPEALS_EVERY = 15 * 60  # appeals past their SLA are looked for this often


def install(registry: Registry, core: Core) -> AppealService:
    """Register opening and deciding appeals, their buttons and the SLA job."""
    service = AppealService(core.organisation, core.engine, core.figures, core.notifier)

    def handle_appeal(ctx: Context, request: Request) -> Result:
        """Open an appeal of one of the asker's own numbers."""
        scope = Scope("person", ctx.asker.id)
        period = ctx.period_of(request, scope, "yesterday")
        result = service.start(
            ctx.asker,
            request.metric or "gmv",
            period,
            request.amount,
            reason=request.text,
            evidence=list(request.evidence),
            platform=ctx.where.platform,
            workspace=ctx.where.workspace,
            language=ctx.language,
            now=ctx.now,
        )
        return Result(result.reply, result.effects, scope.text(), period.label())

    def handle_appeal_action(ctx: Context, request: Request) -> Result:
        """Review, accept, reject (with a reason) or withdraw an appeal by its number."""
        if request.verb is None or request.number is None:
            return Result(Reply(ctx.t("help.appeal_action.example"), ctx.language))
        return service.decide(
            ctx.asker,
            request.number,
            request.verb,
            ctx.now,
            note=request.text or None,
            language=ctx.language,
        )

    def on_click(action: Action, ctx: Context) -> Result | None:
        return service.on_action(action, ctx.asker, ctx.now)

    registry.command(
        Command("appeal_action", "appeals", handle_appeal_action, 0, needs_number=True)
    )
    registry.command(Command("appeal", "appeals", handle_appeal, 2))
    for action_id in APPEAL_ACTIONS:
        registry.action(action_id, on_click)
    registry.job(
        JobKind(
            "appeals",
            every("appeals", APPEALS_EVERY, grace=APPEALS_EVERY),
            lambda job, nominal, delayed: service.check(nominal),
        )
    )
    return service


FEATURE = Feature("appeals", install)
