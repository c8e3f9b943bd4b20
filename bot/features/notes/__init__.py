"""Notes on the numbers ("加备注 TikTok算法调整 昨天"): dated annotations of a team, shop or
person, listed on request and shown in digests."""

from __future__ import annotations

from bot.chat.context import Context
from bot.chat.effects import Result
from bot.chat.messages import Reply, Table
from bot.chat.registry import Command, Feature, Registry
from bot.chat.request import Request
from bot.core import Core
from kpi_engine.annotations import add_note, notes
from kpi_engine.scopes import Scope

# The longest note kept: a note is a line in a digest, not a document (README "Limits").
MAX_NOTE = 500


def _scope(ctx: Context, request: Request) -> Scope:
    subject = request.subject
    if subject is None or subject.kind == "me":
        return Scope("team", ctx.asker.team)
    return ctx.scope_of(subject)


def handle_annotate(ctx: Context, request: Request) -> Result:
    """Record a dated note on the team's (or a named scope's) numbers."""
    scope = _scope(ctx, request)
    access = ctx.core.access
    if not access.can_see(ctx.asker, scope) or (
        scope.kind == "person"
        and scope.id != ctx.asker.id
        and ctx.asker.role not in ("manager", "admin")
    ):
        return Result(ctx.refuse())
    text = request.text.strip()
    if not text:
        return Result(
            Reply(ctx.t("notes.empty", example=ctx.t("help.annotate.example")), ctx.language)
        )
    if len(text) > MAX_NOTE:
        return Result(Reply(ctx.t("notes.too_long", max=MAX_NOTE), ctx.language))
    period = ctx.period_of(request, scope, "today")
    entity = scope.kind if scope.kind == "company" else f"{scope.kind}:{scope.id}"
    note = add_note(ctx.core.engine, entity, period.first, text, ctx.asker.id, now=ctx.now)
    answer = ctx.t("notes.added", day=note.day.isoformat(), who=ctx.name_of(scope), text=note.text)
    return Result(
        Reply(answer, ctx.language, headline=answer), scope=scope.text(), period=period.label()
    )


def handle_annotations(ctx: Context, request: Request) -> Result:
    """The notes on the asker's team (or a named scope) over a period."""
    scope = _scope(ctx, request)
    if not ctx.core.access.can_see(ctx.asker, scope):
        return Result(ctx.refuse())
    period = ctx.period_of(request, scope, "this_month")
    entities = ["company", f"{scope.kind}:{scope.id}"] if scope.kind != "company" else ["company"]
    found = notes(ctx.core.engine, entities, period.first, period.last)
    headline = ctx.t("notes.headline", who=ctx.name_of(scope), period=period.label())
    if not found:
        empty = Reply(headline + "\n" + ctx.t("notes.none"), ctx.language, headline=headline)
        return Result(empty, scope=scope.text(), period=period.label())
    people = ctx.core.organisation.people
    rows = tuple(
        (n.day.isoformat(), n.text, people[n.author].name if n.author in people else n.author)
        for n in found
    )
    reply = Reply(
        "\n".join([headline, *(f"{d}  {t}  — {a}" for d, t, a in rows)]),
        ctx.language,
        headline=headline,
        table=Table((ctx.t("notes.day"), ctx.t("notes.note"), ctx.t("notes.by")), rows),
    )
    return Result(reply, scope=scope.text(), period=period.label())


def install(registry: Registry, core: Core) -> None:
    """Register adding and listing notes (adding before listing: "加备注" has "备注" in it)."""
    registry.command(Command("annotate", "notes", handle_annotate, 20))
    registry.command(Command("annotations", "notes", handle_annotations, 21))


FEATURE = Feature("notes", install)
