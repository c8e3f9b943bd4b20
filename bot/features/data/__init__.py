"""The data behind the numbers: "数据更新到几点 / how fresh is the data" per shop and source,
the admins told when a source goes silent, and the shops' scheduled syncs."""

from __future__ import annotations

from bot.chat.context import Context
from bot.chat.effects import Result
from bot.chat.messages import Reply, Table, Target
from bot.chat.registry import Command, Feature, Registry
from bot.chat.request import Request
from bot.core import Core
from bot.i18n import texts
from bot.i18n.format import DASH, moment
from bot.jobs import JobKind, every
from kpi_engine.freshness import last_imports, shop_freshness, silent_sources
from kpi_engine.languages import Language
from kpi_engine.scopes import Scope

FRESHNESS_EVERY = 30 * 60
SYNC_EVERY = 60  # connected shops are looked at this often (each syncs at its own interval)


def _stamp(at: int | None, timezone: str, language: Language) -> str:
    """An instant as the reader's locale writes it (11月24日 10:30, Nov 24 10:30)."""
    if at is None:
        return DASH
    return moment(at, timezone, language)


def handle_freshness(ctx: Context, request: Request) -> Result:
    """How fresh each shop's data is, for the shops the asker may see."""
    core = ctx.core
    org = core.organisation
    timezone = org.teams[ctx.asker.team].timezone
    shops = [
        s
        for s in org.shops.values()
        if core.access.can_see(ctx.asker, Scope("shop", s.id))
        and (
            request.subject is None or request.subject.kind != "shop" or s.id == request.subject.id
        )
    ]
    synced = {(f.shop_id, f.source): f for f in shop_freshness(core.engine)}
    imported = last_imports(core.engine)
    rows = []
    for shop in shops:
        sources = sorted({source for shop_id, source in synced if shop_id == shop.id})
        if not sources:
            rows.append(
                (
                    shop.name,
                    ctx.t("freshness.imports"),
                    _stamp(imported.get("orders"), timezone, ctx.language),
                )
            )
        for source in sources:
            found = synced[(shop.id, source)]
            rows.append((shop.name, source, _stamp(found.high_water, timezone, ctx.language)))
    headline = ctx.t("freshness.headline", zone=timezone)
    text = "\n".join([headline, *(f"{a} · {b}: {c}" for a, b, c in rows)])
    table = Table(
        (ctx.t("freshness.shop"), ctx.t("freshness.source"), ctx.t("freshness.until")), tuple(rows)
    )
    return Result(Reply(text, ctx.language, headline=headline, table=table))


def check_freshness(core: Core, now: int) -> str:
    """Tell the admins, once per silent stretch, of a source with no new data for too long."""
    org = core.organisation
    limits = org.settings.freshness_hours.model_dump()
    silent = silent_sources(core.engine, limits, now)
    platforms = [p for p in core.platforms if p != "console"]
    for source, last in sorted(silent.items()):
        hours = (now - last) // 3600
        for admin in (p for p in org.people.values() if p.role == "admin"):
            language = org.language_of(admin)
            text = texts(language)(
                "freshness.silent", source=source, hours=hours, limit=limits[source]
            )
            for platform in platforms:
                user = admin.chat.get(platform)
                if user:
                    # One notice per silent stretch: the key names the import it follows.
                    key = f"freshness:{source}:{last}:{platform}:{user}"
                    core.notifier.post(
                        Reply(text, language),
                        Target.direct(platform, "", user),
                        key=key,
                        kind="notice",
                    )
                    break
    return f"silent: {', '.join(sorted(silent)) or 'none'}"


def install(registry: Registry, core: Core) -> None:
    """Register the freshness question and job, and the shops' sync job when connected."""
    registry.command(Command("freshness", "data", handle_freshness, 40))
    registry.job(
        JobKind(
            "freshness",
            every("freshness", FRESHNESS_EVERY),
            lambda job, nominal, delayed: check_freshness(core, nominal),
        )
    )
    sync = core.services.get("shop_sync")
    if sync is not None:
        registry.job(
            JobKind(
                "sync",
                every("sync", SYNC_EVERY, grace=SYNC_EVERY),
                lambda job, nominal, delayed: sync.run_due_syncs(nominal),
            )
        )


FEATURE = Feature("data", install)
