"""The chat commands: one declarative table (names, zh/en aliases, usage, permission) whose
handlers take a parsed request and return a `Reply` — they never send anything themselves.

`help` is generated from the table, and the intent parser reads its aliases from it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bot.chat.access import Access
from bot.chat.intents import Intent, Request, Subject
from bot.chat.messages import (
    Button,
    InboundMessage,
    KeyValue,
    Language,
    ProgressBar,
    Reply,
    Table,
)
from kpi_engine.annotations import add_note, notes
from kpi_engine.compare import Delta
from kpi_engine.figures import Figure, Figures, format_value
from kpi_engine.instants import zone
from kpi_engine.organisation import Organisation, PersonConfig
from kpi_engine.periods import Period, PeriodError, day_of, earlier_period, parse_period
from kpi_engine.scopes import Scope
from kpi_engine.scoring import scorecard
from kpi_engine.targets import Plans, Progress

if TYPE_CHECKING:
    from bot.alerts import AlertService
    from bot.appeals import AppealService

Permission = str  # "member", "manager" or "admin"
ASK = "ask"  # the action of a button whose value is a question to ask


@dataclass(frozen=True)
class Context:
    """Everything a handler may use to answer one person."""

    organisation: Organisation
    engine: Engine
    figures: Figures
    plans: Plans
    access: Access
    asker: PersonConfig
    message: InboundMessage
    language: Language
    now: int
    alerts: AlertService | None = None
    appeals: AppealService | None = None

    def t(self, zh: str, en: str) -> str:
        """The text in the asker's language."""
        return zh if self.language == "zh" else en


Handler = Callable[[Context, Request], Reply]


@dataclass(frozen=True)
class Command:
    """One command: its names in both languages, how to use it, who may, and its handler."""

    intent: Intent
    name: str
    aliases_zh: tuple[str, ...]
    aliases_en: tuple[str, ...]
    usage_zh: str
    usage_en: str
    summary_zh: str
    summary_en: str
    permission: Permission
    handler: Handler


COMMANDS: list[Command] = []


def command(
    intent: Intent,
    name: str,
    *,
    zh: tuple[str, ...],
    en: tuple[str, ...],
    usage: tuple[str, str],
    summary: tuple[str, str],
    permission: Permission = "member",
) -> Callable[[Handler], Handler]:
    """Register a handler in the command table."""

    def register(handler: Handler) -> Handler:
        COMMANDS.append(
            Command(
                intent,
                name,
                zh,
                en,
                usage[0],
                usage[1],
                summary[0],
                summary[1],
                permission,
                handler,
            )
        )
        return handler

    return register


def command_for(intent: Intent) -> Command | None:
    """The command that handles `intent`."""
    return next((c for c in COMMANDS if c.intent == intent), None)


# -- helpers ---------------------------------------------------------------------------------


_RANKS = {"member": 0, "manager": 1, "admin": 2}


def allowed(asker: PersonConfig, permission: Permission) -> bool:
    """Does the asker's role reach the command's permission?"""
    level = 2 if asker.role == "admin" else 1 if asker.role == "manager" else 0
    return level >= _RANKS[permission]


def scope_of(ctx: Context, subject: Subject) -> Scope:
    """The scope a subject stands for, from the asker's point of view."""
    if subject.kind == "me":
        return Scope("person", ctx.asker.id)
    if subject.kind == "team":
        return Scope("team", subject.id or ctx.asker.team)
    if subject.kind == "company":
        return Scope("company")
    return Scope(subject.kind, subject.id)


def name_of(ctx: Context, scope: Scope) -> str:
    """A scope as people call it."""
    org = ctx.organisation
    if scope.kind == "person":
        return org.people[scope.id].name
    if scope.kind == "team":
        return org.teams[scope.id].name
    if scope.kind == "shop":
        return org.shops[scope.id].name
    return org.settings.name


def metric_name(ctx: Context, metric: str) -> str:
    """A metric's name in the asker's language."""
    found = ctx.organisation.catalogue.metrics.get(metric)
    if found is None:
        return metric
    return found.name_zh if ctx.language == "zh" else found.name_en


def period_of(ctx: Context, spec: str | None, scope: Scope, default: str) -> Period:
    """The period asked for, in the scope's zone (PeriodError when it makes no sense)."""
    return parse_period(
        spec or default,
        now=ctx.now,
        timezone=ctx.figures.timezone(scope),
        week_start=ctx.organisation.settings.week_start,
    )


_PERIOD_NAMES = {
    "today": ("今天", "today"),
    "yesterday": ("昨天", "yesterday"),
    "this_week": ("本周", "this week"),
    "last_week": ("上周", "last week"),
    "this_month": ("本月", "this month"),
    "last_month": ("上月", "last month"),
    "last_7_days": ("最近7天", "the last 7 days"),
}


def period_name(ctx: Context, spec: str | None, period: Period, default: str) -> str:
    """ "今天 (2026-11-23)" / "this week (2026-W48)"."""
    names = _PERIOD_NAMES.get(spec or default)
    label = period.label()
    return f"{ctx.t(*names)} ({label})" if names else label


def percent(value: Decimal | None) -> str:
    """A ratio as a percentage, "—" for no value."""
    return "—" if value is None else f"{value * 100:.0f}%"


def context_line(ctx: Context, figures: list[Figure]) -> str:
    """Provisional, freshness and missing FX, in the asker's language."""
    parts = []
    if any(f.provisional for f in figures):
        parts.append(ctx.t("暂定数据（尚未结算）", "provisional (not settled yet)"))
    times = [f.as_of for f in figures if f.as_of is not None]
    if times:
        tz = figures[0].period.timezone
        stamp = datetime.fromtimestamp(min(times), zone(tz)).strftime("%m-%d %H:%M")
        parts.append(ctx.t(f"数据截至 {stamp}（{tz}）", f"data as of {stamp} ({tz})"))
    missing = sorted({m for f in figures for m in f.missing_rates})
    if missing:
        rates = ", ".join(f"{c} {d.isoformat()}" for c, d in missing[:3])
        parts.append(
            ctx.t(f"缺少汇率：{rates}，数字不完整", f"missing FX rates: {rates}; incomplete")
        )
    if any(f.unimported for f in figures):
        parts.append(ctx.t("部分数据源尚无数据", "some data sources have no data yet"))
    return " · ".join(parts)


def refuse(ctx: Context) -> Reply:
    """A refusal that says nothing about whoever was asked about."""
    return Reply(
        ctx.t("你没有权限查看这些数据。", "You don't have access to those numbers."),
        ctx.language,
        private=True,
    )


def personal(ctx: Context, scope: Scope) -> bool:
    """Numbers about one person go privately unless the chat is already private."""
    return scope.kind == "person" and not ctx.message.is_direct


def teammates(ctx: Context, team: str, role: str | None) -> list[Scope]:
    """The team's people, of one role when given."""
    return [
        Scope("person", p.id)
        for p in ctx.organisation.people.values()
        if p.team == team and (role is None or p.role == role)
    ]


def ranking_role(ctx: Context, words: str) -> str | None:
    """The role a ranking is among: named in the text, else the asker's, else streamers."""
    named = {
        "streamer": ("主播", "streamer"),
        "operator": ("运营", "operator"),
        "ad_buyer": ("投手", "ad buyer"),
        "editor": ("编导", "剪辑", "editor"),
        "cs": ("客服", "customer service", "cs"),
    }
    for role, keys in named.items():
        if any(k in words for k in keys):
            return role
    if ctx.asker.role not in ("manager", "admin"):
        return ctx.asker.role
    return "streamer"


# -- commands --------------------------------------------------------------------------------


@command(
    "progress",
    "progress",
    # Only words that ask for progress by themselves: "多少" or "how much" need a metric or a
    # period to mean anything ("今天GMV多少" is progress because it names one).
    zh=("进度", "完成率", "达成", "业绩", "完成得怎么样"),
    en=("progress", "how am i doing", "how are we doing", "status"),
    usage=(
        "进度 [指标] [时间] [我/团队/姓名]，如「今天GMV多少」",
        "progress [metric] [period] [me/team/name], e.g. “my GMV today”",
    ),
    summary=("实际、目标、完成率、进度和排名", "actual, target, achievement, pace and rank"),
)
def handle_progress(ctx: Context, request: Request) -> Reply:
    """A figure against its target: achievement, pace, projection and (for a person) rank."""
    scope = scope_of(ctx, request.subject)
    if not ctx.access.can_see(ctx.asker, scope):
        return refuse(ctx)
    metric = request.metric or "gmv"
    period = period_of(ctx, request.period, scope, "today")
    figure = ctx.figures.figure(metric, scope, period, now=ctx.now)
    progress = ctx.plans.progress(figure, ctx.now)
    value = format_value(figure.value, figure.unit, figure.currency)
    target = format_value(progress.target, figure.unit, figure.currency)
    fields = [
        KeyValue(ctx.t("实际", "Actual"), value),
        KeyValue(ctx.t("目标", "Target"), target if progress.target is not None else "—"),
        KeyValue(ctx.t("完成率", "Achievement"), percent(progress.achievement)),
        KeyValue(ctx.t("进度", "Pace"), percent(progress.pace)),
    ]
    if progress.projection is not None:
        projected = format_value(progress.projection, figure.unit, figure.currency)
        fields.append(KeyValue(ctx.t("预计全期", "Projected"), projected))
    place = ""
    if scope.kind == "person":
        person = ctx.organisation.people[scope.id]
        peers = teammates(ctx, person.team, person.role)
        ranked = ctx.figures.ranking(metric, peers, period, now=ctx.now)
        mine = next((r for r in ranked if r.entity == scope.id), None)
        if mine is not None and mine.rank is not None:
            total = sum(1 for r in ranked if r.rank is not None)
            place = ctx.t(f"组内第 {mine.rank}/{total} 名", f"#{mine.rank} of {total} in the team")
            fields.append(KeyValue(ctx.t("排名", "Rank"), place))
    when = period_name(ctx, request.period, period, "today")
    headline = f"{name_of(ctx, scope)} · {when} · {metric_name(ctx, metric)}"
    lines = [
        headline,
        ctx.t(f"{metric_name(ctx, metric)}：{value}", f"{metric_name(ctx, metric)}: {value}"),
    ]
    achieved, pace = percent(progress.achievement), percent(progress.pace)
    if progress.target is not None:
        lines.append(
            ctx.t(
                f"目标 {target}，完成 {achieved}，进度 {pace}",
                f"target {target}, {achieved} achieved, pace {pace}",
            )
        )
    else:
        lines.append(ctx.t("这一期没有设定目标。", "No target is set for this period."))
    if place:
        lines.append(place)
    if progress.pilot:
        lines.append(
            ctx.t("试行方案：仅供参考，不计奖金。", "Pilot plan: shown, not counted for bonus.")
        )
    bars: tuple[ProgressBar, ...] = ()
    if progress.achievement is not None:
        bars = (ProgressBar(metric_name(ctx, metric), progress.achievement, f"{value} / {target}"),)
    context = context_line(ctx, [figure])
    # Follow-up questions one click away (a button's value is the question it asks).
    buttons = (
        Button(ctx.t("团队排名", "Team ranking"), ASK, ctx.t("本周排名", "team ranking this week")),
        Button(
            ctx.t("为什么变了", "Why it moved"), ASK, ctx.t("为什么GMV变了", "why did GMV move")
        ),
        Button(ctx.t("本月绩效", "My score"), ASK, ctx.t("我的绩效", "my score this month")),
        Button(ctx.t("申诉", "Dispute"), "appeal.start", f"{metric}|{period.first.isoformat()}"),
    )
    return Reply(
        "\n".join(lines),
        ctx.language,
        headline=headline,
        fields=tuple(fields),
        progress=bars,
        buttons=buttons if scope == Scope("person", ctx.asker.id) else (),
        context=context or None,
        private=personal(ctx, scope),
    )


@command(
    "ranking",
    "ranking",
    zh=("排名", "排行", "名次", "榜"),
    en=("ranking", "rank", "leaderboard", "top"),
    usage=(
        "排名 [指标] [时间] [主播/运营…]，如「本周排名」",
        "ranking [metric] [period] [role], e.g. “team ranking yesterday”",
    ),
    summary=("团队内的排名", "the team's ranking"),
)
def handle_ranking(ctx: Context, request: Request) -> Reply:
    """The team's people ranked by a metric; values shown as the asker may see them."""
    subject = request.subject
    team = subject.id if subject.kind == "team" and subject.id else ctx.asker.team
    if subject.kind == "person":
        team = ctx.organisation.people[subject.id].team
    if not ctx.access.can_see(ctx.asker, Scope("team", team)):
        return refuse(ctx)
    metric = request.metric or "gmv"
    role = ranking_role(ctx, request.words)
    people = teammates(ctx, team, role)
    team_scope = Scope("team", team)
    period = period_of(ctx, request.period, team_scope, "today")
    ranked = ctx.figures.ranking(metric, people, period, now=ctx.now)
    show = ctx.access.ranking_values(ctx.asker, team)
    unit = (
        ctx.organisation.catalogue.metrics[metric].unit
        if metric in ctx.organisation.catalogue.metrics
        else "decimal"
    )
    currency = ctx.figures.reporting_currency(team_scope)
    rows = []
    for row in ranked:
        if show == "own" and row.entity != ctx.asker.id:
            continue
        name = ctx.organisation.people[row.entity].name + (
            ctx.t("（你）", " (you)") if row.entity == ctx.asker.id else ""
        )
        value = format_value(row.value, unit, currency)
        if show == "names" and row.entity != ctx.asker.id:
            value = "·"
        rows.append((str(row.rank) if row.rank is not None else "—", name, value))
    when = period_name(ctx, request.period, period, "today")
    headline = f"{name_of(ctx, team_scope)} · {when} · {metric_name(ctx, metric)}"
    lines = [headline] + [f"{r[0]}. {r[1]}  {r[2]}" for r in rows[:20]]
    if not rows:
        lines.append(ctx.t("没有可排名的人。", "Nobody to rank."))
    figures = [ctx.figures.figure(metric, team_scope, period, now=ctx.now)]
    return Reply(
        "\n".join(lines),
        ctx.language,
        headline=headline,
        table=Table(
            (ctx.t("名次", "Rank"), ctx.t("姓名", "Name"), metric_name(ctx, metric)),
            tuple(rows),
        ),
        context=context_line(ctx, figures) or None,
        private=show == "values" and not ctx.message.is_direct,
    )


@command(
    "why",
    "why",
    zh=("为什么", "为何", "原因", "怎么回事", "归因"),
    en=("why", "explain", "reason"),
    usage=(
        "为什么 [时间] [我/团队]，如「为什么GMV下降了」",
        "why [period] [me/team], e.g. “why did GMV drop”",
    ),
    summary=(
        "GMV变化拆成流量×转化×客单价",
        "a GMV change split into traffic × conversion × order value",
    ),
)
def handle_why(ctx: Context, request: Request) -> Reply:
    """Why GMV moved from the period before: each driver's share of the change."""
    scope = scope_of(ctx, request.subject)
    if request.subject.kind == "me" and ctx.asker.role in ("manager", "admin"):
        scope = Scope("team", ctx.asker.team)
    if not ctx.access.can_see(ctx.asker, scope):
        return refuse(ctx)
    period = period_of(ctx, request.period, scope, "yesterday")
    previous = period.previous()
    explanation = ctx.figures.explain(scope, period, now=ctx.now, previous=previous)
    currency = ctx.figures.reporting_currency(scope)

    def money(value: Decimal | None) -> str:
        return format_value(value, "money", currency)

    headline = ctx.t(
        f"{name_of(ctx, scope)} · GMV {period.label()} 对比 {previous.label()}",
        f"{name_of(ctx, scope)} · GMV {period.label()} vs {previous.label()}",
    )
    if explanation is None:
        return Reply(
            headline
            + "\n"
            + ctx.t(
                "数据不足，无法拆分（没有成交或流量）。",
                "Not enough data to explain (no sales or traffic).",
            ),
            ctx.language,
            headline=headline,
            private=personal(ctx, scope),
        )
    names = {
        "traffic": ctx.t("流量", "traffic"),
        "conversion": ctx.t("转化率", "conversion"),
        "aov": ctx.t("客单价", "order value"),
    }
    rows = tuple(
        (
            names.get(d.name, d.name),
            _driver_value(d.name, d.before, currency),
            _driver_value(d.name, d.after, currency),
            money(d.contribution),
        )
        for d in explanation.drivers
    )
    change = money(explanation.change)
    lines = [headline, f"{money(explanation.before)} → {money(explanation.after)} ({change})"]
    lines += [f"{r[0]}: {r[1]} → {r[2]}  {r[3]}" for r in rows]
    if explanation.biggest is not None:
        lines.append(
            ctx.t(
                f"主要原因：{names.get(explanation.biggest.name)}",
                f"Biggest driver: {names.get(explanation.biggest.name)}",
            )
        )
    figures = [ctx.figures.figure("gmv", scope, period, now=ctx.now)]
    return Reply(
        "\n".join(lines),
        ctx.language,
        headline=headline,
        table=Table(
            (
                ctx.t("因素", "Driver"),
                ctx.t("之前", "Before"),
                ctx.t("之后", "After"),
                ctx.t("贡献", "Effect"),
            ),
            rows,
        ),
        context=context_line(ctx, figures) or None,
        private=personal(ctx, scope),
    )


def _driver_value(name: str, value: Decimal, currency: str) -> str:
    if name == "conversion":
        return f"{value * 100:.1f}%"
    if name == "aov":
        return format_value(value, "money", currency)
    return format_value(value, "count", None)


@command(
    "compare",
    "compare",
    zh=("对比", "比较", "环比", "同比"),
    en=("compare", "vs", "versus", "compared"),
    usage=(
        "对比 [指标] [时间]，如「本周GMV环比」「本月同比」",
        "compare [metric] [period], e.g. “compare GMV this week”",
    ),
    summary=("与上一期或去年同期比较", "against the previous period or a year ago"),
)
def handle_compare(ctx: Context, request: Request) -> Reply:
    """A figure against the previous period (or a year ago, when asked)."""
    scope = scope_of(ctx, request.subject)
    if not ctx.access.can_see(ctx.asker, scope):
        return refuse(ctx)
    metric = request.metric or "gmv"
    period = period_of(ctx, request.period, scope, "this_week")
    year_ago = "同比" in request.words or "year" in request.words
    earlier = earlier_period(period, "year_ago" if year_ago else "previous", ctx.now)
    now_figure = ctx.figures.figure(metric, scope, period, now=ctx.now)
    then_figure = ctx.figures.figure(metric, scope, earlier, now=ctx.now)
    delta = Delta(then_figure.value, now_figure.value)
    unit, currency = now_figure.unit, now_figure.currency
    change = "—"
    if delta.change is not None:
        change = (
            f"{delta.change * 100:+.1f} pp"
            if unit == "ratio"
            else f"{'+' if delta.change >= 0 else ''}{format_value(delta.change, unit, currency)}"
        )
        if delta.ratio is not None and unit != "ratio":
            change += f" ({delta.ratio * 100:+.1f}%)"
    versus = f"{period.label()} {ctx.t('对比', 'vs')} {earlier.label()}"
    headline = f"{name_of(ctx, scope)} · {metric_name(ctx, metric)} · {versus}"
    before, after = (
        format_value(then_figure.value, unit, currency),
        format_value(now_figure.value, unit, currency),
    )
    return Reply(
        f"{headline}\n{before} → {after}  {change}",
        ctx.language,
        headline=headline,
        fields=(
            KeyValue(earlier.label(), before),
            KeyValue(period.label(), after),
            KeyValue(ctx.t("变化", "Change"), change),
        ),
        context=context_line(ctx, [now_figure, then_figure]) or None,
        private=personal(ctx, scope),
    )


@command(
    "breakdown",
    "breakdown",
    zh=("明细", "拆分", "分解", "按店铺", "按人", "按天", "按渠道", "每天", "每个店"),
    en=("breakdown", "by shop", "by person", "by day", "by channel", "per shop", "per day"),
    usage=(
        "明细 [指标] [时间] 按店铺/按人/按天/按渠道",
        "breakdown [metric] [period] by shop/person/day/channel",
    ),
    summary=("按店铺、人、天或渠道拆开看", "split by shop, person, day or channel"),
)
def handle_breakdown(ctx: Context, request: Request) -> Reply:
    """A metric split by shop, person, day or channel."""
    by = request.by or "day"
    metric = request.metric or "gmv"
    subject = request.subject
    scope = scope_of(ctx, subject)
    if by in ("shop", "person") and scope.kind == "person":
        scope = Scope("team", ctx.organisation.people[scope.id].team)
    if not ctx.access.can_see(ctx.asker, scope):
        return refuse(ctx)
    period = period_of(ctx, request.period, scope, "this_week" if by == "day" else "today")
    figures = ctx.figures
    rows: list[tuple[str, str]] = []
    found: list[Figure] = []
    if by == "day":
        for day in period.dates()[:31]:
            figure = figures.figure(metric, scope, day_of(day, period.timezone), now=ctx.now)
            found.append(figure)
            rows.append((day.isoformat(), format_value(figure.value, figure.unit, figure.currency)))
    elif by == "shop":
        shops = [
            Scope("shop", s.id)
            for s in ctx.organisation.shops.values()
            if scope.kind == "company"
            or (scope.kind == "team" and s.team == scope.id)
            or (scope.kind == "shop" and s.id == scope.id)
        ]
        # Each shop in its own currency, over the team's days.
        for shop in shops:
            figure = figures.figure(
                metric,
                shop,
                period,
                now=ctx.now,
            )
            found.append(figure)
            rows.append(
                (name_of(ctx, shop), format_value(figure.value, figure.unit, figure.currency))
            )
    elif by == "person":
        if ctx.access.ranking_values(ctx.asker, scope.id) != "values":
            return refuse(ctx)
        people = teammates(ctx, scope.id, None)
        values = figures.figures_of([metric], people, period, now=ctx.now)
        for person in people:
            figure = values[person][metric]
            if figure.value:
                found.append(figure)
                rows.append(
                    (name_of(ctx, person), format_value(figure.value, figure.unit, figure.currency))
                )
    else:  # channel: live rooms against everything else
        both = figures.figures(["gmv", "live_gmv"], scope, period, now=ctx.now)
        found = list(both.values())
        total, live = both["gmv"].value, both["live_gmv"].value
        currency = both["gmv"].currency
        rows = [
            (ctx.t("直播", "live"), format_value(live, "money", currency)),
            (
                ctx.t("其他（短视频、商城…）", "other (video, mall…)"),
                format_value(
                    None if total is None or live is None else total - live, "money", currency
                ),
            ),
        ]
        metric = "gmv"
    headline = f"{name_of(ctx, scope)} · {metric_name(ctx, metric)} · {period.label()}"
    label = {
        "day": ctx.t("日期", "Day"),
        "shop": ctx.t("店铺", "Shop"),
        "person": ctx.t("姓名", "Name"),
        "channel": ctx.t("渠道", "Channel"),
    }[by]
    return Reply(
        "\n".join([headline, *(f"{a}  {b}" for a, b in rows)]),
        ctx.language,
        headline=headline,
        table=Table((label, metric_name(ctx, metric)), tuple(rows)),
        context=context_line(ctx, found) or None,
        private=personal(ctx, scope) or (by == "person" and not ctx.message.is_direct),
    )


@command(
    "score",
    "score",
    zh=("得分", "评分", "奖金", "绩效", "分数", "考核"),
    en=("score", "scorecard", "bonus"),
    usage=(
        "得分 [时间] [我/姓名]，如「我的绩效」",
        "score [period] [me/name], e.g. “my bonus this month”",
    ),
    summary=("岗位评分卡和奖金预估", "role scorecard and bonus preview"),
)
def handle_score(ctx: Context, request: Request) -> Reply:
    """A person's role scorecard: each item's points, the score and the bonus preview."""
    scope = scope_of(ctx, request.subject)
    if scope.kind != "person":
        scope = Scope("person", ctx.asker.id)
    if not ctx.access.can_see(ctx.asker, scope):
        return refuse(ctx)
    period = period_of(ctx, request.period, scope, "this_month")
    card = scorecard(ctx.figures, ctx.plans, scope.id, period, now=ctx.now)
    person = ctx.organisation.people[scope.id]
    headline = ctx.t(
        f"{person.name} · {period.label()} 评分卡", f"{person.name} · scorecard {period.label()}"
    )
    if card is None:
        return Reply(
            headline + "\n" + ctx.t("这个岗位没有评分卡。", "This role has no scorecard."),
            ctx.language,
            headline=headline,
            private=personal(ctx, scope),
        )
    currency = ctx.figures.reporting_currency(scope)
    rows = []
    for item in card.items:
        progress: Progress | None = item.progress
        value = (
            "—"
            if progress is None
            else format_value(progress.figure.value, progress.figure.unit, progress.figure.currency)
        )
        points = "—" if item.points is None else f"{item.points:.1f}"
        rows.append(
            (
                metric_name(ctx, item.item.metric),
                f"{item.item.weight:g}",
                value,
                percent(item.achievement),
                points,
            )
        )
    score = "—" if card.score is None else f"{card.score:.1f}"
    bonus = format_value(card.bonus, "money", currency)
    lines = [
        headline,
        ctx.t(f"总分 {score}，预计奖金 {bonus}", f"Score {score}, bonus preview {bonus}"),
    ]
    if card.failed_gates:
        gates = ", ".join(metric_name(ctx, g.metric) for g in card.failed_gates)
        lines.append(
            ctx.t(
                f"未通过门槛：{gates}，本期无奖金", f"Gate not met: {gates}; no bonus this period"
            )
        )
    if card.pilot:
        lines.append(
            ctx.t("试行方案：仅供参考，不计奖金。", "Pilot plan: shown, not counted for bonus.")
        )
    lines += [f"{r[0]} ({r[1]}): {r[2]} · {r[3]} → {r[4]}" for r in rows]
    figures = [i.progress.figure for i in card.items if i.progress is not None]
    return Reply(
        "\n".join(lines),
        ctx.language,
        headline=headline,
        fields=(
            KeyValue(ctx.t("总分", "Score"), score),
            KeyValue(ctx.t("奖金预估", "Bonus preview"), bonus),
        ),
        table=Table(
            (
                ctx.t("指标", "Metric"),
                ctx.t("权重", "Weight"),
                ctx.t("实际", "Actual"),
                ctx.t("完成率", "Achievement"),
                ctx.t("得分", "Points"),
            ),
            tuple(rows),
        ),
        context=context_line(ctx, figures) or None,
        private=personal(ctx, scope),
    )


@command(
    "annotate",
    "note",
    zh=("添加备注", "加备注", "记一笔", "备注一下", "标注"),
    en=("annotate", "add note"),
    usage=(
        "加备注 <内容> [时间] [团队/店铺]，如「加备注 TikTok算法调整 昨天」",
        "add note <text> [period] [team/shop], e.g. “add note TikTok algorithm change yesterday”",
    ),
    summary=("给某天的数字加备注", "add a dated note to the numbers"),
)
def handle_annotate(ctx: Context, request: Request) -> Reply:
    """Record a dated note on the team's (or a named scope's) numbers."""
    scope = scope_of(ctx, request.subject)
    if request.subject.kind == "me":
        scope = Scope("team", ctx.asker.team)
    if not ctx.access.can_see(ctx.asker, scope) or (
        scope.kind == "person" and scope.id != ctx.asker.id and not allowed(ctx.asker, "manager")
    ):
        return refuse(ctx)
    if not request.note:
        annotate = command_for("annotate")
        assert annotate is not None  # registered above
        usage = ctx.t(annotate.usage_zh, annotate.usage_en)
        return Reply(
            ctx.t(f"请写上备注内容：{usage}", f"Please add the note's text: {usage}"), ctx.language
        )
    period = period_of(ctx, request.period, scope, "today")
    entity = scope.kind if scope.kind == "company" else f"{scope.kind}:{scope.id}"
    note = add_note(ctx.engine, entity, period.first, request.note, ctx.asker.id, now=ctx.now)
    text = ctx.t(
        f"已记下 {note.day.isoformat()} {name_of(ctx, scope)}：{note.text}",
        f"Noted for {name_of(ctx, scope)} on {note.day.isoformat()}: {note.text}",
    )
    return Reply(text, ctx.language, headline=text)


@command(
    "annotations",
    "notes",
    zh=("备注", "注释"),
    en=("notes", "annotations", "note"),
    usage=(
        "备注 [时间] [团队/店铺]，如「本月备注」",
        "notes [period] [team/shop], e.g. “notes this month”",
    ),
    summary=("查看某段时间的备注", "list the notes of a period"),
)
def handle_annotations(ctx: Context, request: Request) -> Reply:
    """The notes on the asker's team (or a named scope) over a period."""
    scope = scope_of(ctx, request.subject)
    if request.subject.kind == "me":
        scope = Scope("team", ctx.asker.team)
    if not ctx.access.can_see(ctx.asker, scope):
        return refuse(ctx)
    period = period_of(ctx, request.period, scope, "this_month")
    entities = ["company", f"{scope.kind}:{scope.id}"] if scope.kind != "company" else ["company"]
    found = notes(ctx.engine, entities, period.first, period.last)
    headline = ctx.t(
        f"{name_of(ctx, scope)} · {period.label()} 的备注",
        f"Notes for {name_of(ctx, scope)} · {period.label()}",
    )
    if not found:
        return Reply(
            headline + "\n" + ctx.t("没有备注。", "No notes."), ctx.language, headline=headline
        )
    people = ctx.organisation.people
    rows = tuple(
        (n.day.isoformat(), n.text, people[n.author].name if n.author in people else n.author)
        for n in found
    )
    return Reply(
        "\n".join([headline, *(f"{d}  {t}  — {a}" for d, t, a in rows)]),
        ctx.language,
        headline=headline,
        table=Table((ctx.t("日期", "Day"), ctx.t("备注", "Note"), ctx.t("作者", "By")), rows),
    )


@command(
    "alerts",
    "alerts",
    zh=("告警", "预警", "报警"),
    en=("alerts", "alert", "alarms"),
    usage=("告警", "alerts"),
    summary=("当前的告警", "open alerts"),
)
def handle_alerts(ctx: Context, request: Request) -> Reply:
    """The open alerts the asker may act on (or why there are none)."""
    if ctx.alerts is not None and ctx.alerts.rules:
        summary = ctx.alerts.summary(ctx.asker, ctx.language)
        return replace(summary, private=not ctx.message.is_direct)
    text = ctx.t(
        "还没有配置告警规则，所以没有告警。请管理员在配置中添加。",
        "No alert rules are configured yet, so there are no alerts; ask your admin to add some.",
    )
    return Reply(text, ctx.language, private=not ctx.message.is_direct)


_ALERT_VERBS = (
    ("ack", ("确认", "收到"), ("ack", "acknowledge")),
    ("snooze", ("暂停", "静音", "稍后提醒"), ("snooze", "mute")),
    ("false_alarm", ("误报", "不是问题"), ("false alarm", "not a problem")),
    ("resolve", ("解决", "已解决", "关闭"), ("resolve", "close")),
)


@command(
    "alert_action",
    "ack",
    zh=tuple(w for _, zh, _ in _ALERT_VERBS for w in zh),
    en=tuple(w for _, _, en in _ALERT_VERBS for w in en),
    usage=(
        "确认 <告警号> · 暂停 <告警号> 2小时/明天 · 误报 <告警号> · 解决 <告警号>",
        "ack <alert> · snooze <alert> 2h/tomorrow · not a problem <alert> · resolve <alert>",
    ),
    summary=("处理告警", "act on an alert"),
)
def handle_alert_action(ctx: Context, request: Request) -> Reply:
    """Acknowledge, snooze, mark not a problem, or resolve an alert by its number."""
    match = _leading_verb(ctx.message.text, _ALERT_VERBS)
    if ctx.alerts is None or match is None:
        return _not_an_action(ctx, request, "alert_action")
    verb, number, rest = match
    outcome = ctx.alerts.act(
        ctx.asker,
        number,
        verb,
        ctx.now,
        snooze=(rest or None) if verb == "snooze" else None,
        note=(rest or None) if verb == "ack" else None,
        language=ctx.language,
    )
    return outcome.reply


def _leading_verb(
    text: str, verbs: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
) -> tuple[str, int, str] | None:
    """(verb, number, the rest) when the text starts with one of the verbs and a number, as
    in "确认 42 在跟进" or "snooze #42 2h"; None otherwise ("帮我确认一下今天GMV")."""
    body = re.sub(r"^\s*/?kpi\s+", "", text.strip(), flags=re.IGNORECASE)
    for verb, zh, en in verbs:
        for word in sorted((*zh, *en), key=len, reverse=True):
            found = re.match(rf"{re.escape(word)}\s*#?(\d+)\s*(.*)$", body, re.IGNORECASE | re.S)
            if found:
                return verb, int(found.group(1)), found.group(2).strip()
    return None


def _not_an_action(ctx: Context, request: Request, intent: Intent) -> Reply:
    """A verb like "确认" used in an ordinary question: answer the question instead."""
    if request.metric is not None or request.period is not None:
        progress = command_for("progress")
        assert progress is not None
        return progress.handler(ctx, request)
    usage = command_for(intent)
    assert usage is not None
    return Reply(ctx.t(f"用法：{usage.usage_zh}", f"Usage: {usage.usage_en}"), ctx.language)


_APPEAL_VERBS = (
    ("review", ("受理",), ("review",)),
    ("accept", ("接受", "同意"), ("accept", "approve")),
    ("reject", ("驳回", "拒绝"), ("reject", "decline")),
    ("withdraw", ("撤回", "撤销"), ("withdraw",)),
)


@command(
    "appeal_action",
    "accept",
    zh=tuple(w for _, zh, _ in _APPEAL_VERBS for w in zh),
    en=tuple(w for _, _, en in _APPEAL_VERBS for w in en),
    usage=(
        "受理 <申诉号> · 接受 <申诉号> · 驳回 <申诉号> <理由> · 撤回 <申诉号>",
        "review <appeal> · accept <appeal> · reject <appeal> <reason> · withdraw <appeal>",
    ),
    summary=("处理申诉", "decide an appeal"),
)
def handle_appeal_action(ctx: Context, request: Request) -> Reply:
    """Review, accept, reject (with a reason) or withdraw an appeal by its number."""
    match = _leading_verb(ctx.message.text, _APPEAL_VERBS)
    if ctx.appeals is None or match is None:
        return _not_an_action(ctx, request, "appeal_action")
    move, number, rest = match
    return ctx.appeals.decide(
        ctx.asker, number, move, ctx.now, note=rest or None, language=ctx.language
    )


@command(
    "appeal",
    "appeal",
    zh=("申诉", "有异议", "数字不对"),
    en=("appeal", "dispute"),
    usage=(
        "申诉 [时间][指标] 应该是<数字> [订单 <订单号>] [理由]，"
        "如「申诉 昨天GMV 应该是12000 订单 5791234」",
        "appeal [metric] [period] <the right number> [orders <ids>] [reason], "
        "e.g. “appeal gmv 2026-11-20 12000”",
    ),
    summary=("对数字提出申诉", "dispute a number"),
)
def handle_appeal(ctx: Context, request: Request) -> Reply:
    """Open an appeal of one of the asker's own numbers."""
    if ctx.appeals is None:
        return Reply(ctx.t("申诉暂不可用。", "Appeals are not available here."), ctx.language)
    scope = Scope("person", ctx.asker.id)
    period = period_of(ctx, request.period, scope, "yesterday")
    return ctx.appeals.start(
        ctx.asker,
        request.metric or "gmv",
        period,
        ctx.message.text,
        platform=ctx.message.platform,
        workspace=ctx.message.workspace,
        language=ctx.language,
        now=ctx.now,
    )


@command(
    "ping",
    "ping",
    zh=("在吗", "在不在"),
    en=("ping",),
    usage=("在吗", "ping"),
    summary=("确认机器人在线", "check that the bot is there"),
)
def handle_ping(ctx: Context, request: Request) -> Reply:
    """An answer that needs no numbers: shows the bot is up (and is the benchmarks' echo)."""
    return Reply(ctx.t("在的！", "pong"), ctx.language)


@command(
    "help",
    "help",
    zh=("帮助", "怎么用", "命令", "使用说明"),
    en=("help", "commands", "usage"),
    usage=("帮助", "help"),
    summary=("列出所有命令", "list every command"),
)
def handle_help(ctx: Context, request: Request) -> Reply:
    """Every command the asker may use, generated from the command table."""
    return help_reply(ctx)


def help_reply(ctx: Context, prefix: str = "") -> Reply:
    """The generated help, after an optional first line."""
    rows = tuple(
        (
            c.aliases_zh[0] if ctx.language == "zh" else c.name,
            ctx.t(c.summary_zh, c.summary_en),
            ctx.t(c.usage_zh, c.usage_en),
        )
        for c in COMMANDS
        if allowed(ctx.asker, c.permission)
    )
    headline = ctx.t("可以这样问我：", "You can ask me:")
    lines = (
        ([prefix] if prefix else [])
        + [headline]
        + [f"• {name} — {summary}: {usage}" for name, summary, usage in rows]
    )
    if prefix:  # the headline is what renderers show above the table: keep the prefix
        headline = ctx.t(prefix + headline, f"{prefix} {headline}")
    return Reply(
        "\n".join(lines),
        ctx.language,
        headline=headline,
        table=Table(
            (ctx.t("命令", "Command"), ctx.t("作用", "What"), ctx.t("用法", "Usage")), rows
        ),
    )


def unknown_reply(ctx: Context, request: Request) -> Reply:
    """Suggestions for text nothing matched, plus the short help, in the asker's language."""
    vocabulary = [
        a for c in COMMANDS for a in (c.aliases_zh if ctx.language == "zh" else c.aliases_en)
    ]
    vocabulary += [
        m.name_zh if ctx.language == "zh" else m.name_en.lower()
        for m in ctx.organisation.catalogue.metrics.values()
    ]
    words = request.words.split() or [request.words]
    close = []
    for word in words:
        close += difflib.get_close_matches(word, vocabulary, n=2, cutoff=0.6)
    close = list(dict.fromkeys(close))[:3]
    first = ctx.t("没听懂这句话。", "Sorry, I didn't understand that.")
    if close:
        quoted = ctx.t("、".join(f"「{w}」" for w in close), ", ".join(f"“{w}”" for w in close))
        first += ctx.t(f"你是不是想问 {quoted}？", f" Did you mean {quoted}?")
    return help_reply(ctx, first)


def unregistered_reply(message: InboundMessage, language: Language) -> Reply:
    """What an unknown user is told: who to ask, and the id to give them."""
    who = f"{message.platform}:{message.sender}"
    text = (
        f"你还没有在 kpibot 登记。请管理员把你的 ID {who} 加到人员配置里。"
        if language == "zh"
        else f"You are not registered with kpibot yet. Ask your admin to add your id {who} "
        "to the people configuration."
    )
    return Reply(text, language, private=not message.is_direct)


def error_reply(language: Language) -> Reply:
    """A friendly answer when a handler failed (the trace goes to the log)."""
    text = (
        "抱歉，出了点问题，已经记录下来了。请稍后再试。"
        if language == "zh"
        else "Sorry, something went wrong on my side; it has been logged. Please try again shortly."
    )
    return Reply(text, language, private=True)


def period_error_reply(ctx: Context, error: PeriodError) -> Reply:
    """A period that could not be understood (the engine's explanation is in English)."""
    return Reply(
        ctx.t(
            "时间没看懂。可以这样说：今天、昨天、本周、上周、本月、上月、最近7天、11月、"
            "11月20日、2026-11-20。",
            f"I couldn't read the period: {error}",
        ),
        ctx.language,
    )
