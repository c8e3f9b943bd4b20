"""Figure questions: progress against target, rankings, why GMV moved, comparisons,
breakdowns and scorecards — each computed under the asker's permissions, answered in their
language, privately when the group may not see it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from bot.chat.context import ASK, Context, incomplete_mark, percent
from bot.chat.effects import Result
from bot.chat.messages import Button, KeyValue, ProgressBar, Reply, Table
from bot.chat.request import Request
from kpi_engine.compare import Delta, Ranked, rank
from kpi_engine.figures import Figure, format_value
from kpi_engine.periods import Period, day_of, earlier_period
from kpi_engine.restatements import Watched
from kpi_engine.scopes import Scope
from kpi_engine.scorecards import Scorecard
from kpi_engine.scoring import scorecard

_PERIOD_NAMES = {
    "today": ("今天", "today"),
    "yesterday": ("昨天", "yesterday"),
    "this_week": ("本周", "this week"),
    "last_week": ("上周", "last week"),
    "this_month": ("本月", "this month"),
    "last_month": ("上月", "last month"),
    "last_7_days": ("最近7天", "the last 7 days"),
}


def period_name(ctx: Context, request: Request, period: Period, default: str) -> str:
    """ "今天 (2026-11-23)" / "this week (2026-W48)"."""
    names = _PERIOD_NAMES.get(request.period or default)
    label = period.label()
    return f"{ctx.zh(*names)} ({label})" if names else label


def _done(result: Result, scope: Scope, period: Period) -> Result:
    """The result, saying what it was about."""
    return replace(result, scope=scope.text(), period=period.label())


def teammates(ctx: Context, team: str, role: str | None) -> list[Scope]:
    """The team's people, of one role when given."""
    return [
        Scope("person", p.id)
        for p in ctx.core.organisation.people.values()
        if p.team == team and (role is None or p.role == role)
    ]


def rank_figures(ctx: Context, metric: str, found: dict[Scope, dict[str, Figure]]) -> list[Ranked]:
    """People ranked by their figures of `metric` (ties share a place)."""
    definition = ctx.core.organisation.catalogue.get(metric)
    values = {scope.id: figures[metric].value for scope, figures in found.items()}
    return rank(values, definition.direction if definition else "higher")


def _question(ctx: Context, message_zh: str, message_en: str, metric: str) -> str:
    """A follow-up question a button asks, naming the metric by its key."""
    return ctx.zh(message_zh, message_en).format(metric=metric.replace("_", " "))


def handle_progress(ctx: Context, request: Request) -> Result:
    """A figure against its target: achievement, pace, projection and (for a person) rank."""
    scope = ctx.scope_of(request.subject)
    if not ctx.core.access.can_see(ctx.asker, scope):
        return Result(ctx.refuse())
    figures, plans = ctx.core.figures, ctx.core.plans
    metric = request.metric or "gmv"
    period = ctx.period_of(request, scope, "today")
    figure = figures.figure(metric, scope, period, now=ctx.now)
    progress = plans.progress(figure, ctx.now)
    value = format_value(figure.value, figure.unit, figure.currency)
    target = format_value(progress.target, figure.unit, figure.currency)
    flag = incomplete_mark(ctx.zh, [figure])
    fields = [
        KeyValue(ctx.zh("实际", "Actual"), value),
        KeyValue(ctx.zh("目标", "Target"), target if progress.target is not None else "—"),
        KeyValue(ctx.zh("完成率", "Achievement"), percent(progress.achievement) + flag),
        KeyValue(ctx.zh("进度", "Pace"), percent(progress.pace) + flag),
    ]
    if progress.target is not None and figure.value is not None and progress.expected is not None:
        gap = progress.target - figure.value
        if gap > 0:
            fields.append(
                KeyValue(ctx.zh("距目标", "To go"), format_value(gap, figure.unit, figure.currency))
            )
    if progress.projection is not None:
        projected = format_value(progress.projection, figure.unit, figure.currency)
        fields.append(KeyValue(ctx.zh("预计全期", "Projected"), projected + flag))
    place = ""
    shown = [figure]
    if scope.kind == "person":
        person = ctx.core.organisation.people[scope.id]
        peers = teammates(ctx, person.team, person.role)
        found = figures.figures_of([metric], peers, period, now=ctx.now)
        ranked = rank_figures(ctx, metric, found)
        mine = next((r for r in ranked if r.entity == scope.id), None)
        if mine is not None and mine.rank is not None:
            total = sum(1 for r in ranked if r.rank is not None)
            place = ctx.zh(f"组内第 {mine.rank}/{total} 名", f"#{mine.rank} of {total} in the team")
            place += incomplete_mark(ctx.zh, [f[metric] for f in found.values()])
            fields.append(KeyValue(ctx.zh("排名", "Rank"), place))
            shown += [f[metric] for f in found.values()]
    when = period_name(ctx, request, period, "today")
    name = ctx.metric_name(metric)
    headline = f"{ctx.name_of(scope)} · {when} · {name}"
    lines = [headline, ctx.zh(f"{name}：{value}", f"{name}: {value}")]
    achieved, pace = percent(progress.achievement), percent(progress.pace)
    if progress.target is not None:
        lines.append(
            ctx.zh(
                f"目标 {target}，完成 {achieved}，进度 {pace}",
                f"target {target}, {achieved} achieved, pace {pace}",
            )
        )
    else:
        lines.append(ctx.zh("这一期没有设定目标。", "No target is set for this period."))
    if place:
        lines.append(place)
    if progress.pilot:
        lines.append(
            ctx.zh("试行方案：仅供参考，不计奖金。", "Pilot plan: shown, not counted for bonus.")
        )
    bars: tuple[ProgressBar, ...] = ()
    if progress.achievement is not None:
        bars = (ProgressBar(name, progress.achievement, f"{value} / {target}"),)
    context = ctx.context_line(shown)
    # Follow-up questions one click away (a button's value is the question it asks).
    # Only GMV has a "why" (its traffic × conversion × order value split): another metric's card
    # does not offer GMV's explanation as if it were its own.
    why = (
        Button(
            ctx.zh("为什么变了", "Why it moved"),
            ASK,
            ctx.zh(f"为什么 {period.label()} GMV变了", f"why did GMV move {period.label()}"),
        ),
    )
    buttons = (
        Button(
            ctx.zh("团队排名", "Team ranking"),
            ASK,
            _question(ctx, "本周排名 {metric}", "team ranking {metric} this week", metric),
        ),
        *(why if metric == "gmv" else ()),
        Button(ctx.zh("本月绩效", "My score"), ASK, ctx.zh("我的绩效", "my score this month")),
        Button(ctx.zh("申诉", "Dispute"), "appeal.start", f"{metric}|{period.first.isoformat()}"),
        Button(ctx.zh("📊 看板", "📊 Dashboard"), "dashboard.open", ""),
    )
    reply = Reply(
        "\n".join(lines),
        ctx.language,
        headline=headline,
        fields=tuple(fields),
        progress=bars,
        buttons=buttons if scope == Scope("person", ctx.asker.id) else (),
        context=context or None,
        private=ctx.private_for(scope),
        watch=(Watched.of(figure),),
    )
    return _done(Result(reply), scope, period)


def handle_ranking(ctx: Context, request: Request) -> Result:
    """The team's people ranked by a metric; values shown as the asker may see them, and only
    where everyone reading may see them."""
    org, access = ctx.core.organisation, ctx.core.access
    subject = request.subject
    team = ctx.asker.team
    if subject is not None and subject.kind == "team" and subject.id:
        team = subject.id
    elif subject is not None and subject.kind == "person":
        team = org.people[subject.id].team
    elif subject is None or subject.kind in ("team", "me"):
        default = access.default_scope(ctx.asker)
        team = default.id if default.kind == "team" else ctx.asker.team
    team_scope = Scope("team", team)
    if not access.can_see(ctx.asker, team_scope):
        return Result(ctx.refuse())
    metric = request.metric or "gmv"
    role = request.role or (ctx.asker.role if ctx.asker.role not in ("manager", "admin") else None)
    people = teammates(ctx, team, role or "streamer")
    period = ctx.period_of(request, team_scope, "today")
    found = ctx.core.figures.figures_of([metric], people, period, now=ctx.now)
    ranked = rank_figures(ctx, metric, found)
    if request.bottom:
        ranked = [r for r in reversed(ranked) if r.rank is not None] + [
            r for r in ranked if r.rank is None
        ]
    if request.top:
        ranked = ranked[: request.top]
    show = access.ranking_values(ctx.asker, team)
    definition = org.catalogue.metrics.get(metric)
    unit = definition.unit if definition else "decimal"
    currency = ctx.core.figures.reporting_currency(team_scope)
    rows = []
    for row in ranked:
        if show == "own" and row.entity != ctx.asker.id:
            continue
        name = org.people[row.entity].name + (
            ctx.zh("（你）", " (you)") if row.entity == ctx.asker.id else ""
        )
        value = format_value(row.value, unit, currency)
        if show == "names" and row.entity != ctx.asker.id:
            value = "·"
        rows.append((str(row.rank) if row.rank is not None else "—", name, value))
    when = period_name(ctx, request, period, "today")
    headline = f"{ctx.name_of(team_scope)} · {when} · {ctx.metric_name(metric)}"
    lines = [headline] + [f"{r[0]}. {r[1]}  {r[2]}" for r in rows[:20]]
    if not rows:
        lines.append(ctx.zh("没有可排名的人。", "Nobody to rank."))
    team_figure = ctx.core.figures.figure(metric, team_scope, period, now=ctx.now)
    figures = [team_figure, *(f[metric] for f in found.values())]
    stated = [
        f[metric] for scope, f in found.items() if show == "values" or scope.id == ctx.asker.id
    ]
    # Values go to the group only when every member may see everyone's.
    public = org.settings.ranking_for_members == "values"
    reply = Reply(
        "\n".join(lines),
        ctx.language,
        headline=headline,
        table=Table(
            (ctx.zh("名次", "Rank"), ctx.zh("姓名", "Name"), ctx.metric_name(metric)),
            tuple(rows),
        ),
        context=ctx.context_line(figures) or None,
        # 📊 opens the clicker's own dashboard (a private link under their permissions).
        buttons=(Button(ctx.zh("📊 看板", "📊 Dashboard"), "dashboard.open", ""),),
        private=not ctx.where.is_direct and not (public and access.group_may_see(team, team_scope)),
        watch=tuple(Watched.of(f) for f in stated),
    )
    return _done(Result(reply), team_scope, period)


def _driver_value(ctx: Context, metric: str | None, value: Decimal, currency: str) -> str:
    """A driver's value in its metric's unit."""
    found = ctx.core.organisation.catalogue.get(metric) if metric else None
    unit = found.unit if found else "count"
    return format_value(value, unit, currency)


def handle_why(ctx: Context, request: Request) -> Result:
    """Why GMV moved from the period before: each driver's share of the change."""
    scope = ctx.scope_of(request.subject)
    if not ctx.core.access.can_see(ctx.asker, scope):
        return Result(ctx.refuse())
    figures = ctx.core.figures
    period = ctx.period_of(request, scope, "yesterday")
    previous = earlier_period(period, "previous", ctx.now)
    explanation = figures.explain(scope, period, now=ctx.now, previous=previous)
    currency = figures.reporting_currency(scope)

    def money(value: Decimal | None) -> str:
        return format_value(value, "money", currency)

    headline = ctx.zh(
        f"{ctx.name_of(scope)} · GMV {period.label()} 对比 {previous.label()}",
        f"{ctx.name_of(scope)} · GMV {period.label()} vs {previous.label()}",
    )
    if explanation is None:
        reply = Reply(
            headline
            + "\n"
            + ctx.zh(
                "数据不足，无法拆分（没有成交或流量）。",
                "Not enough data to explain (no sales or traffic).",
            ),
            ctx.language,
            headline=headline,
            private=ctx.private_for(scope),
        )
        return _done(Result(reply), scope, period)
    other = ctx.zh("其他渠道（无流量数据）", "other channels (no traffic data)")

    def driver_name(metric: str | None) -> str:
        return other if metric is None else ctx.metric_name(metric)

    rows = [
        (
            driver_name(d.metric),
            _driver_value(ctx, d.metric, d.before, currency),
            _driver_value(ctx, d.metric, d.after, currency),
            money(d.contribution),
        )
        for d in explanation.drivers
    ]
    if explanation.unexplained:
        rows.append((other, "—", "—", money(explanation.unexplained)))
    change = money(explanation.change)
    lines = [headline, f"{money(explanation.before)} → {money(explanation.after)} ({change})"]
    lines += [f"{r[0]}: {r[1]} → {r[2]}  {r[3]}" for r in rows]
    fields = [KeyValue(ctx.zh("变化", "Change"), change)]
    share = explanation.covered_share
    if explanation.traffic == "views" and share is not None and share < 1:
        lines.append(
            ctx.zh(
                f"直播观看只覆盖 {percent(share)} 的订单；"
                "其余订单（其他渠道）的变化无法按流量拆分。",
                f"Live views cover {percent(share)} of the orders; the change of the others "
                "(other channels) cannot be split by traffic.",
            )
        )
        fields.append(
            KeyValue(
                ctx.zh("流量覆盖", "Traffic covers"),
                ctx.zh(
                    f"{percent(share)} 的订单（直播观看）", f"{percent(share)} of orders (live)"
                ),
            )
        )
    biggest = explanation.biggest
    if biggest is not None:
        main = driver_name(None if biggest.name == "other" else biggest.metric)
        lines.append(ctx.zh(f"主要原因：{main}", f"Biggest driver: {main}"))
        fields.append(KeyValue(ctx.zh("主要原因", "Biggest driver"), main))
    keys = ["gmv", *(d.metric for d in explanation.drivers if d.metric)]
    stated = [
        f for p in (period, previous) for f in figures.figures(keys, scope, p, now=ctx.now).values()
    ]
    reply = Reply(
        "\n".join(lines),
        ctx.language,
        headline=headline,
        fields=tuple(fields),
        table=Table(
            (
                ctx.zh("因素", "Driver"),
                ctx.zh("之前", "Before"),
                ctx.zh("之后", "After"),
                ctx.zh("贡献", "Effect"),
            ),
            tuple(rows),
        ),
        context=ctx.context_line(stated[:1]) or None,
        private=ctx.private_for(scope),
        watch=tuple(Watched.of(f) for f in stated),
    )
    return _done(Result(reply), scope, period)


def handle_compare(ctx: Context, request: Request) -> Result:
    """A figure against the previous period (or a year ago, when asked)."""
    scope = ctx.scope_of(request.subject)
    if not ctx.core.access.can_see(ctx.asker, scope):
        return Result(ctx.refuse())
    figures = ctx.core.figures
    metric = request.metric or "gmv"
    period = ctx.period_of(request, scope, "this_week")
    earlier = earlier_period(period, request.compare or "previous", ctx.now)
    now_figure = figures.figure(metric, scope, period, now=ctx.now)
    then_figure = figures.figure(metric, scope, earlier, now=ctx.now)
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
    versus = f"{period.label()} {ctx.zh('对比', 'vs')} {earlier.label()}"
    headline = f"{ctx.name_of(scope)} · {ctx.metric_name(metric)} · {versus}"
    before, after = (
        format_value(then_figure.value, unit, currency),
        format_value(now_figure.value, unit, currency),
    )
    reply = Reply(
        f"{headline}\n{before} → {after}  {change}",
        ctx.language,
        headline=headline,
        fields=(
            KeyValue(earlier.label(), before),
            KeyValue(period.label(), after),
            KeyValue(ctx.zh("变化", "Change"), change),
        ),
        context=ctx.context_line([now_figure, then_figure]) or None,
        private=ctx.private_for(scope),
        watch=(Watched.of(now_figure), Watched.of(then_figure)),
    )
    return _done(Result(reply), scope, period)


def _until_today(period: Period, today: date) -> list[date]:
    """The period's days that have begun: a week under way lists no day after today."""
    return [day for day in period.dates() if day <= today]


def handle_breakdown(ctx: Context, request: Request) -> Result:
    """A metric split by shop, person, day or channel."""
    org, access, figures = ctx.core.organisation, ctx.core.access, ctx.core.figures
    by = request.by or "day"
    metric = request.metric or "gmv"
    scope = ctx.scope_of(request.subject)
    if by in ("shop", "person") and scope.kind == "person":
        scope = Scope("team", org.people[scope.id].team)
    if not access.can_see(ctx.asker, scope):
        return Result(ctx.refuse())
    period = ctx.period_of(request, scope, "this_week" if by == "day" else "today")
    rows: list[tuple[str, str]] = []
    found: list[Figure] = []
    if by == "day":
        from kpi_engine.periods import today as today_in

        current = today_in(ctx.now, period.timezone)
        for day in _until_today(period, current)[:31]:
            figure = figures.figure(metric, scope, day_of(day, period.timezone), now=ctx.now)
            found.append(figure)
            rows.append((day.isoformat(), format_value(figure.value, figure.unit, figure.currency)))
    elif by == "shop":
        shops = [
            Scope("shop", s.id)
            for s in org.shops.values()
            if scope.kind == "company"
            or (scope.kind == "team" and s.team == scope.id)
            or (scope.kind == "shop" and s.id == scope.id)
        ]
        # Each shop in its own currency, and converted to the scope's (each order at its own
        # date's rate), over the scope's days.
        currency = figures.reporting_currency(scope)
        own = figures.figures_of([metric], shops, period, now=ctx.now)
        converted = figures.figures_of([metric], shops, period, now=ctx.now, currency=currency)
        for shop in shops:
            figure, same = own[shop][metric], converted[shop][metric]
            found += [figure, same]
            shown = format_value(figure.value, figure.unit, figure.currency)
            if figure.unit == "money" and figure.currency != same.currency:
                shown += f" ≈ {format_value(same.value, same.unit, same.currency)}"
            rows.append((ctx.name_of(shop), shown))
    elif by == "person":
        if scope.kind != "team" or access.ranking_values(ctx.asker, scope.id) != "values":
            return Result(ctx.refuse())
        people = teammates(ctx, scope.id, None)
        values = figures.figures_of([metric], people, period, now=ctx.now)
        for person in people:
            figure = values[person][metric]
            if figure.value:
                found.append(figure)
                rows.append(
                    (
                        ctx.name_of(person),
                        format_value(figure.value, figure.unit, figure.currency),
                    )
                )
    else:  # channel: live rooms against everything else
        both = figures.figures(["gmv", "live_gmv"], scope, period, now=ctx.now)
        found = list(both.values())
        total, live = both["gmv"].value, both["live_gmv"].value
        in_currency = both["gmv"].currency
        rows = [
            (ctx.zh("直播", "live"), format_value(live, "money", in_currency)),
            (
                ctx.zh("其他（短视频、商城…）", "other (video, mall…)"),
                format_value(
                    None if total is None or live is None else total - live, "money", in_currency
                ),
            ),
        ]
        metric = "gmv"
    headline = f"{ctx.name_of(scope)} · {ctx.metric_name(metric)} · {period.label()}"
    label = {
        "day": ctx.zh("日期", "Day"),
        "shop": ctx.zh("店铺", "Shop"),
        "person": ctx.zh("姓名", "Name"),
        "channel": ctx.zh("渠道", "Channel"),
    }[by]
    everyone = ctx.private_for(scope) or (by == "person" and not ctx.where.is_direct)
    reply = Reply(
        "\n".join([headline, *(f"{a}  {b}" for a, b in rows)]),
        ctx.language,
        headline=headline,
        table=Table((label, ctx.metric_name(metric)), tuple(rows)),
        context=ctx.context_line(found) or None,
        private=everyone,
        watch=tuple(
            Watched.of(f, converted=f.currency != figures.reporting_currency(f.scope))
            for f in found
        ),
    )
    return _done(Result(reply), scope, period)


def handle_score(ctx: Context, request: Request) -> Result:
    """A person's role scorecard: each item's points, the score and the bonus preview."""
    subject = request.subject
    scope = (
        Scope("person", subject.id)
        if subject is not None and subject.kind == "person"
        else Scope("person", ctx.asker.id)
    )
    if not ctx.core.access.can_see(ctx.asker, scope):
        return Result(ctx.refuse())
    period = ctx.period_of(request, scope, "this_month")
    card = scorecard(ctx.core.figures, ctx.core.plans, scope.id, period, now=ctx.now)
    person = ctx.core.organisation.people[scope.id]
    headline = ctx.zh(
        f"{person.name} · {period.label()} 评分卡", f"{person.name} · scorecard {period.label()}"
    )
    if card is None:
        reply = Reply(
            headline + "\n" + ctx.zh("这个岗位没有评分卡。", "This role has no scorecard."),
            ctx.language,
            headline=headline,
            private=ctx.private_for(scope),
        )
        return _done(Result(reply), scope, period)
    currency = ctx.core.figures.reporting_currency(scope)
    rows = []
    for item in card.items:
        progress = item.progress
        value = (
            "—"
            if progress is None
            else format_value(progress.figure.value, progress.figure.unit, progress.figure.currency)
        )
        points = "—" if item.points is None else f"{item.points:.1f}"
        rows.append(
            (
                ctx.metric_name(item.item.metric),
                f"{item.item.weight:g}",
                value,
                percent(item.achievement),
                points,
            )
        )
    score = "—" if card.score is None else f"{card.score:.1f}"
    currency = card.currency or currency
    bonus = format_value(card.bonus, "money", currency)
    why = bonus_reasons(ctx, card)
    # The reason goes where every platform shows it: the bonus field itself, not only the text.
    shown_bonus = bonus + (ctx.zh(f"（{'；'.join(why)}）", f" ({'; '.join(why)})") if why else "")
    lines = [
        headline,
        ctx.zh(
            f"总分 {score}，预计奖金 {shown_bonus}", f"Score {score}, bonus preview {shown_bonus}"
        ),
    ]
    fields = [
        KeyValue(ctx.zh("总分", "Score"), score),
        KeyValue(ctx.zh("奖金预估", "Bonus preview"), shown_bonus),
    ]
    lines += [f"{r[0]} ({r[1]}): {r[2]} · {r[3]} → {r[4]}" for r in rows]
    found = [i.progress.figure for i in card.items if i.progress is not None]
    reply = Reply(
        "\n".join(lines),
        ctx.language,
        headline=headline,
        fields=tuple(fields),
        table=Table(
            (
                ctx.zh("指标", "Metric"),
                ctx.zh("权重", "Weight"),
                ctx.zh("实际", "Actual"),
                ctx.zh("完成率", "Achievement"),
                ctx.zh("得分", "Points"),
            ),
            tuple(rows),
        ),
        context=ctx.context_line(found) or None,
        private=ctx.private_for(scope),
        watch=tuple(Watched.of(f) for f in found),
    )
    return _done(Result(reply), scope, period)


def bonus_reasons(ctx: Context, card: Scorecard) -> list[str]:
    """Why a bonus is not payable (or uncertain), in the reader's language: the failed gate with
    its value and limit, a pilot plan, an item without a value or target, a missing FX rate."""
    reasons = []
    for result in card.gate_values:
        gate, name = result.gate, ctx.metric_name(result.gate.metric)
        found = ctx.core.organisation.catalogue.get(gate.metric)
        unit = found.unit if found else "decimal"
        value = format_value(result.value, unit, card.currency)
        if result.value is None:
            reasons.append(
                ctx.zh(f"{name}没有数值，未通过门槛", f"{name} has no value: gate not met")
            )
        elif gate.max is not None and result.value > gate.max:
            limit = format_value(gate.max, unit, card.currency)
            reasons.append(
                ctx.zh(
                    f"{name} {value} 高于上限 {limit}", f"{name} {value} above its limit {limit}"
                )
            )
        else:
            limit = format_value(gate.min, unit, card.currency)
            reasons.append(
                ctx.zh(
                    f"{name} {value} 低于下限 {limit}", f"{name} {value} below its floor {limit}"
                )
            )
    if card.pilot:
        reasons.append(ctx.zh("试行方案，不计奖金", "pilot plan: not payable"))
    if card.score is None:
        reasons.append(ctx.zh("有指标尚无数值或目标", "an item has no value or target yet"))
    if card.first_tier is not None and not card.bonus:
        tier = f"{card.first_tier:g}"
        reasons.append(
            ctx.zh(f"总分未达最低档 {tier} 分", f"score below the first tier ({tier} points)")
        )
    if card.missing_rates:
        rates = ", ".join(f"{c} {d.isoformat()}" for c, d in card.missing_rates[:3])
        reasons.append(
            ctx.zh(f"缺少汇率 {rates}，数字不完整", f"incomplete: no FX rate for {rates}")
        )
    return reasons
