"""Figure questions: progress against target, rankings, why GMV moved, comparisons,
breakdowns and scorecards — each computed under the asker's permissions, answered in their
language, privately when the group may not see it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from bot.chat.context import ASK, Context, bar_caption, incomplete_mark
from bot.chat.effects import Result
from bot.chat.messages import Button, KeyValue, ProgressBar, Reply, Table
from bot.chat.request import Request
from bot.i18n.format import DASH, number, percent, points
from bot.i18n.format import pace as pace_text
from kpi_engine.compare import Delta, Ranked, rank
from kpi_engine.figures import Figure
from kpi_engine.periods import Period, day_of, earlier_period
from kpi_engine.restatements import Watched
from kpi_engine.scopes import Scope
from kpi_engine.scorecards import Scorecard
from kpi_engine.scoring import scorecard

# The periods said by name as well as by their label (`figures.period.<key>`).
_NAMED_PERIODS = frozenset(
    ("today", "yesterday", "this_week", "last_week", "this_month", "last_month", "last_7_days")
)


def period_name(ctx: Context, request: Request, period: Period, default: str) -> str:
    """ "今天 (2026-11-23)" / "this week (2026-W48)" / "今日（2026-11-23）"."""
    key = request.period or default
    label = period.label()
    if key not in _NAMED_PERIODS:
        return label
    return ctx.t("figures.period_named", name=ctx.t(f"figures.period.{key}"), label=label)


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


def _question(ctx: Context, message_id: str, metric: str) -> str:
    """A follow-up question a button asks, naming the metric by its key."""
    return ctx.t(message_id, metric=metric.replace("_", " "))


def default_period(ctx: Context, metric: str) -> str:
    """The period a question without one is about: today, except for imported daily metrics
    (first response time, on-time dispatch), which arrive once a day is over: this month."""
    found = ctx.core.organisation.catalogue.get(metric)
    return "this_month" if found is not None and found.imported is not None else "today"


def handle_progress(ctx: Context, request: Request) -> Result:
    """A figure against its target: achievement, pace, projection and (for a person) rank."""
    scope = ctx.scope_of(request.subject)
    if not ctx.core.access.can_see(ctx.asker, scope):
        return Result(ctx.refuse())
    figures, plans = ctx.core.figures, ctx.core.plans
    metric = request.metric or "gmv"
    default = default_period(ctx, metric)
    period = ctx.period_of(request, scope, default)
    figure = figures.figure(metric, scope, period, now=ctx.now)
    progress = plans.progress(figure, ctx.now)
    t, language = ctx.t, ctx.language
    value = ctx.figure_text(figure.value, figure.unit, figure.currency)
    target = ctx.figure_text(progress.target, figure.unit, figure.currency)
    flag = incomplete_mark(language, [figure])
    achieved, pace = percent(progress.achievement, language), pace_text(progress, language)
    fields = [
        KeyValue(t("figures.actual"), value),
        KeyValue(t("figures.target"), target),
        KeyValue(t("figures.achievement"), achieved + flag),
        KeyValue(t("figures.pace"), pace + flag),
    ]
    if progress.target is not None and figure.value is not None and progress.expected is not None:
        gap = progress.target - figure.value
        if gap > 0:
            fields.append(
                KeyValue(t("figures.to_go"), ctx.figure_text(gap, figure.unit, figure.currency))
            )
    if progress.projection is not None:
        projected = ctx.figure_text(progress.projection, figure.unit, figure.currency)
        fields.append(KeyValue(t("figures.projected"), projected + flag))
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
            place = t("figures.place", rank=mine.rank, total=total)
            place += incomplete_mark(language, [f[metric] for f in found.values()])
            fields.append(KeyValue(t("figures.rank"), place))
            shown += [f[metric] for f in found.values()]
    when = period_name(ctx, request, period, default)
    name = ctx.metric_name(metric)
    headline = f"{ctx.name_of(scope)} · {when} · {name}"
    lines = [headline, t("figures.value_line", name=name, value=value)]
    if progress.target is not None:
        lines.append(t("figures.target_line", target=target, achieved=achieved, pace=pace))
    else:
        lines.append(t("figures.no_target"))
    if place:
        lines.append(place)
    if progress.pilot:
        lines.append(t("figures.pilot"))
    bars: tuple[ProgressBar, ...] = ()
    if progress.achievement is not None:
        bars = (
            ProgressBar(name, progress.achievement, bar_caption(figure, progress.target, language)),
        )
    context = ctx.context_line(shown)
    # Follow-up questions one click away (a button's value is the question it asks).
    # Only GMV has a "why" (its traffic × conversion × order value split): another metric's card
    # does not offer GMV's explanation as if it were its own.
    why = (Button(t("figures.button.why"), ASK, t("figures.ask.why", period=period.label())),)
    buttons = (
        Button(t("figures.button.ranking"), ASK, _question(ctx, "figures.ask.ranking", metric)),
        *(why if metric == "gmv" else ()),
        Button(t("figures.button.score"), ASK, t("figures.ask.score")),
        Button(t("figures.button.appeal"), "appeal.start", f"{metric}|{period.first.isoformat()}"),
        Button(t("figures.button.dashboard"), "dashboard.open", ""),
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


def _team_asked(ctx: Context, request: Request) -> tuple[Scope, list[Scope]] | None:
    """The team a ranking is of (the one named, a named person's, else the asker's default)
    and its people of the role compared (the one named, else the asker's; streamers for
    managers and admins); None when the asker may not see that team."""
    subject = request.subject
    if subject is not None and subject.kind == "team" and subject.id:
        team = subject.id
    elif subject is not None and subject.kind == "person":
        team = ctx.core.organisation.people[subject.id].team
    else:
        default = ctx.core.access.default_scope(ctx.asker)
        team = default.id if default.kind == "team" else ctx.asker.team
    if not ctx.core.access.can_see(ctx.asker, Scope("team", team)):
        return None
    own = ctx.asker.role if ctx.asker.role not in ("manager", "admin") else None
    return Scope("team", team), teammates(ctx, team, request.role or own or "streamer")


def _ordered(ranked: list[Ranked], request: Request) -> list[Ranked]:
    """A ranking as asked: from the bottom ("倒数前三"), and only the first few ("top 3")."""
    if request.bottom:
        ranked = [r for r in reversed(ranked) if r.rank is not None] + [
            r for r in ranked if r.rank is None
        ]
    return ranked[: request.top] if request.top else ranked


def _every_team(request: Request) -> bool:
    """Does the question ask about every team ("各团队排名", "本月各团队GMV", "company ranking")?"""
    subject = request.subject
    return request.by == "team" or (subject is not None and subject.kind == "company")


def handle_ranking(ctx: Context, request: Request) -> Result:
    """The team's people ranked by a metric; values shown as the asker may see them, and only
    where everyone reading may see them. Every team asked about: the teams ranked, for those
    who may see the company's numbers (a manager: their own team's people; a member: refused)."""
    org, access = ctx.core.organisation, ctx.core.access
    if _every_team(request):
        if access.can_see(ctx.asker, Scope("company")):
            return _rank_teams(ctx, request)
        if ctx.asker.role != "manager":
            return Result(ctx.refuse())
        request = replace(request, subject=None, by=None)
    asked = _team_asked(ctx, request)
    if asked is None:
        return Result(ctx.refuse())
    team_scope, people = asked
    team, metric = team_scope.id, request.metric or "gmv"
    default = default_period(ctx, metric)
    period = ctx.period_of(request, team_scope, default)
    found = ctx.core.figures.figures_of([metric], people, period, now=ctx.now)
    ranked = _ordered(rank_figures(ctx, metric, found), request)
    show = access.ranking_values(ctx.asker, team)
    definition = org.catalogue.metrics.get(metric)
    unit = definition.unit if definition else "decimal"
    currency = ctx.core.figures.reporting_currency(team_scope)
    t = ctx.t
    rows = []
    for row in ranked:
        if show == "own" and row.entity != ctx.asker.id:
            continue
        name = org.people[row.entity].name + (
            t("figures.you") if row.entity == ctx.asker.id else ""
        )
        value = ctx.figure_text(row.value, unit, currency)
        if show == "names" and row.entity != ctx.asker.id:
            value = "·"
        rows.append((str(row.rank) if row.rank is not None else DASH, name, value))
    when = period_name(ctx, request, period, default)
    headline = f"{ctx.name_of(team_scope)} · {when} · {ctx.metric_name(metric)}"
    lines = [headline] + [f"{r[0]}. {r[1]}  {r[2]}" for r in rows[:20]]
    if not rows:
        lines.append(t("figures.nobody_to_rank"))
    team_figure = ctx.core.figures.figure(metric, team_scope, period, now=ctx.now)
    figures = [team_figure, *(f[metric] for f in found.values())]
    stated = [
        f[metric] for scope, f in found.items() if show == "values" or scope.id == ctx.asker.id
    ]
    # Values go to the group only when every member may see everyone's.
    public = org.settings.ranking_for_members == "values"
    reply = _ranking_reply(
        ctx,
        lines,
        (t("figures.column.name"), ctx.metric_name(metric)),
        rows,
        figures,
        private=not ctx.where.is_direct and not (public and access.group_may_see(team, team_scope)),
        watch=tuple(Watched.of(f) for f in stated),
    )
    return _done(Result(reply), team_scope, period)


def _ranking_reply(
    ctx: Context,
    lines: list[str],
    columns: tuple[str, str],
    rows: list[tuple[str, str, str]],
    shown: list[Figure],
    *,
    private: bool,
    watch: tuple[Watched, ...],
) -> Reply:
    """A ranking's reply: its lines (the first is the headline), a table of place, name and
    value, the figures' context line and 📊, which opens the clicker's own dashboard (a
    private link under their permissions)."""
    return Reply(
        "\n".join(lines),
        ctx.language,
        headline=lines[0],
        table=Table((ctx.t("figures.column.place"), *columns), tuple(rows)),
        context=ctx.context_line(shown) or None,
        buttons=(Button(ctx.t("figures.button.dashboard"), "dashboard.open", ""),),
        private=private,
        watch=watch,
    )


def _rank_teams(ctx: Context, request: Request) -> Result:
    """Every team ranked by a metric over the company's days, each in the company's currency
    (each amount at its own date's rate), so that the values compare."""
    org, figures = ctx.core.organisation, ctx.core.figures
    company, metric = Scope("company"), request.metric or "gmv"
    default = default_period(ctx, metric)
    period = ctx.period_of(request, company, default)
    currency = figures.reporting_currency(company)
    teams = [Scope("team", team) for team in org.teams]
    found = figures.figures_of([metric], teams, period, now=ctx.now, currency=currency)
    ranked = _ordered(rank_figures(ctx, metric, found), request)
    definition = org.catalogue.metrics.get(metric)
    unit = definition.unit if definition else "decimal"
    t = ctx.t
    rows = [
        (
            str(row.rank) if row.rank is not None else DASH,
            org.teams[row.entity].name,
            ctx.figure_text(row.value, unit, currency),
        )
        for row in ranked
    ]
    when = period_name(ctx, request, period, default)
    headline = f"{ctx.name_of(company)} · {when} · {ctx.metric_name(metric)}"
    lines = [headline] + [f"{r[0]}. {r[1]}  {r[2]}" for r in rows]
    shown = [f[metric] for f in found.values()]
    reply = _ranking_reply(
        ctx,
        lines,
        (t("figures.column.team"), ctx.metric_name(metric)),
        rows,
        shown,
        private=ctx.private_for(company),
        watch=tuple(
            Watched.of(f, converted=f.currency != figures.reporting_currency(f.scope))
            for f in shown
        ),
    )
    return _done(Result(reply), company, period)


def handle_behind(ctx: Context, request: Request) -> Result:
    """Who in the team is behind the pace their target expects by now ("who is behind pace",
    "谁落后进度"), furthest behind first: for those who may see their colleagues' values; a
    member learns only whether they are behind themselves."""
    org, access = ctx.core.organisation, ctx.core.access
    asked = _team_asked(ctx, request)
    if asked is None:
        return Result(ctx.refuse())
    team_scope, people = asked
    team, metric = team_scope.id, request.metric or "gmv"
    if access.ranking_values(ctx.asker, team) != "values":
        people = [p for p in people if p.id == ctx.asker.id]
    period = ctx.period_of(request, team_scope, "this_month")
    found = ctx.core.figures.figures_of([metric], people, period, now=ctx.now)
    progress = {s: ctx.core.plans.progress(f[metric], ctx.now) for s, f in found.items()}
    behind = sorted(
        ((p.pace, scope) for scope, p in progress.items() if p.pace is not None and p.pace < 1),
        key=lambda item: (item[0], item[1].id),
    )
    t, language = ctx.t, ctx.language
    early = sum(1 for p in progress.values() if p.early)
    without = sum(1 for p in progress.values() if p.pace is None and not p.early)
    rows = []
    for pace, scope in behind:
        p = progress[scope]
        figure = p.figure
        rows.append(
            (
                org.people[scope.id].name,
                percent(pace, language),
                ctx.figure_text(figure.value, figure.unit, figure.currency),
                ctx.figure_text(p.expected, figure.unit, figure.currency),
            )
        )
    when = period_name(ctx, request, period, "this_month")
    headline = t("figures.behind.headline", scope=ctx.name_of(team_scope), period=when,
                 metric=ctx.metric_name(metric))  # fmt: skip
    lines = [headline]
    lines += [
        t("figures.behind.line", name=r[0], pace=r[1], value=r[2], expected=r[3]) for r in rows
    ]
    if not rows and len(progress) - without - early:
        lines.append(t("figures.behind.nobody", count=len(progress) - without - early))
    if early:
        lines.append(t("figures.behind.too_early", count=early))
    if without:
        lines.append(t("figures.behind.no_target", count=without))
    stated = [found[scope][metric] for _, scope in behind]
    reply = Reply(
        "\n".join(lines),
        language,
        headline=headline,
        table=Table(
            (
                t("figures.column.name"),
                t("figures.pace"),
                t("figures.actual"),
                t("figures.behind.expected"),
            ),
            tuple(rows),
        )
        if rows
        else None,
        context=ctx.context_line([f[metric] for f in found.values()]) or None,
        # Whose pace is behind is for those who may see it: never posted to the group.
        private=not ctx.where.is_direct,
        watch=tuple(Watched.of(f) for f in stated),
    )
    return _done(Result(reply), team_scope, period)


def _driver_value(ctx: Context, metric: str | None, value: Decimal, currency: str) -> str:
    """A driver's value in its metric's unit."""
    found = ctx.core.organisation.catalogue.get(metric) if metric else None
    unit = found.unit if found else "count"
    return ctx.figure_text(value, unit, currency)


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
    t, language = ctx.t, ctx.language

    def money(value: Decimal | None) -> str:
        return ctx.figure_text(value, "money", currency)

    headline = t(
        "figures.why.headline",
        scope=ctx.name_of(scope),
        period=period.label(),
        previous=previous.label(),
    )
    if explanation is None:
        reply = Reply(
            headline + "\n" + t("figures.why.no_data"),
            ctx.language,
            headline=headline,
            private=ctx.private_for(scope),
        )
        return _done(Result(reply), scope, period)
    other = t("figures.why.other")

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
        rows.append((other, DASH, DASH, money(explanation.unexplained)))
    change = money(explanation.change)
    moved = t(
        "figures.why.moved",
        before=money(explanation.before),
        after=money(explanation.after),
        change=change,
    )
    lines = [headline, moved]
    lines += [f"{r[0]}: {r[1]} → {r[2]}  {r[3]}" for r in rows]
    fields = [KeyValue(t("figures.change"), change)]
    share = explanation.covered_share
    if explanation.traffic == "views" and share is not None and share < 1:
        covered = percent(share, language)
        lines.append(t("figures.why.covered_line", share=covered))
        fields.append(KeyValue(t("figures.why.covers"), t("figures.why.covered", share=covered)))
    biggest = explanation.biggest
    if biggest is not None:
        main = driver_name(None if biggest.name == "other" else biggest.metric)
        lines.append(t("figures.why.biggest_line", name=main))
        fields.append(KeyValue(t("figures.why.biggest"), main))
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
                t("figures.why.driver"),
                t("figures.why.before"),
                t("figures.why.after"),
                t("figures.why.effect"),
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
    t, language = ctx.t, ctx.language
    change = DASH
    if delta.change is not None:
        change = (
            points(delta.change, language)
            if unit == "ratio"
            else _signed(delta.change, ctx.figure_text(delta.change, unit, currency))
        )
        if delta.ratio is not None and unit != "ratio":
            ratio = _signed(delta.ratio, percent(delta.ratio, language, places=1))
            change += t("figures.compare.ratio", ratio=ratio)
    versus = t("figures.compare.versus", period=period.label(), earlier=earlier.label())
    headline = f"{ctx.name_of(scope)} · {ctx.metric_name(metric)} · {versus}"
    before, after = (
        ctx.figure_text(then_figure.value, unit, currency),
        ctx.figure_text(now_figure.value, unit, currency),
    )
    reply = Reply(
        f"{headline}\n{before} → {after}  {change}",
        ctx.language,
        headline=headline,
        fields=(
            KeyValue(earlier.label(), before),
            KeyValue(period.label(), after),
            KeyValue(t("figures.change"), change),
        ),
        context=ctx.context_line([now_figure, then_figure]) or None,
        private=ctx.private_for(scope),
        watch=(Watched.of(now_figure), Watched.of(then_figure)),
    )
    return _done(Result(reply), scope, period)


def _signed(value: Decimal, written: str) -> str:
    """A change written with its sign: "+" before a rise or no change (a fall has its "-")."""
    return written if value < 0 else "+" + written


def _until_today(period: Period, today: date) -> list[date]:
    """The period's days that have begun: a week under way lists no day after today."""
    return [day for day in period.dates() if day <= today]


def _parts(ctx: Context, scope: Scope, by: str) -> list[Scope]:
    """The shops or the teams within a scope (every team of the company; a team itself)."""
    org = ctx.core.organisation
    if by == "team":
        if scope.kind == "company":
            return [Scope("team", team) for team in org.teams]
        return [scope] if scope.kind == "team" else []
    return [
        Scope("shop", s.id)
        for s in org.shops.values()
        if scope.kind == "company"
        or (scope.kind == "team" and s.team == scope.id)
        or (scope.kind == "shop" and s.id == scope.id)
    ]


def handle_breakdown(ctx: Context, request: Request) -> Result:
    """A metric split by shop, team, person, day or channel."""
    org, access, figures = ctx.core.organisation, ctx.core.access, ctx.core.figures
    by = request.by or "day"
    metric = request.metric or "gmv"
    scope = ctx.scope_of(request.subject)
    if by == "team" and scope.kind == "company" and not access.can_see(ctx.asker, scope):
        if ctx.asker.role != "manager":
            return Result(ctx.refuse())
        scope = access.default_scope(ctx.asker)  # a manager: the team they manage
    if by in ("shop", "person", "team") and scope.kind == "person":
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
            rows.append(
                (day.isoformat(), ctx.figure_text(figure.value, figure.unit, figure.currency))
            )
    elif by in ("shop", "team"):
        parts = _parts(ctx, scope, by)
        # Each shop or team in its own currency, and converted to the scope's (each order at
        # its own date's rate), over the scope's days.
        currency = figures.reporting_currency(scope)
        own = figures.figures_of([metric], parts, period, now=ctx.now)
        converted = figures.figures_of([metric], parts, period, now=ctx.now, currency=currency)
        for part in parts:
            figure, same = own[part][metric], converted[part][metric]
            found += [figure, same]
            shown = ctx.figure_text(figure.value, figure.unit, figure.currency)
            if figure.unit == "money" and figure.currency != same.currency:
                shown += f" ≈ {ctx.figure_text(same.value, same.unit, same.currency)}"
            rows.append((ctx.name_of(part), shown))
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
                        ctx.figure_text(figure.value, figure.unit, figure.currency),
                    )
                )
    else:  # channel: live rooms against everything else
        both = figures.figures(["gmv", "live_gmv"], scope, period, now=ctx.now)
        found = list(both.values())
        total, live = both["gmv"].value, both["live_gmv"].value
        in_currency = both["gmv"].currency
        rest = None if total is None or live is None else total - live
        rows = [
            (ctx.t("figures.channel.live"), ctx.figure_text(live, "money", in_currency)),
            (ctx.t("figures.channel.other"), ctx.figure_text(rest, "money", in_currency)),
        ]
        metric = "gmv"
    headline = f"{ctx.name_of(scope)} · {ctx.metric_name(metric)} · {period.label()}"
    label = ctx.t(f"figures.by.{by}")
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
    t, language = ctx.t, ctx.language
    headline = t("figures.score.headline", name=person.name, period=period.label())
    if card is None:
        reply = Reply(
            headline + "\n" + t("figures.score.none"),
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
            DASH
            if progress is None
            else ctx.figure_text(
                progress.figure.value, progress.figure.unit, progress.figure.currency
            )
        )
        rows.append(
            (
                ctx.metric_name(item.item.metric),
                f"{item.item.weight:g}",
                value,
                percent(item.achievement, language),
                number(item.points, language, places=1),
            )
        )
    score = number(card.score, language, places=1)
    currency = card.currency or currency
    bonus = ctx.figure_text(card.bonus, "money", currency)
    why = bonus_reasons(ctx, card)
    # The reason goes where every platform shows it: the bonus field itself, not only the text.
    if why:
        reasons = t("figures.score.reason_separator").join(why)
        bonus += t("figures.score.reasons", reasons=reasons)
    lines = [headline, t("figures.score.line", score=score, bonus=bonus)]
    fields = [
        KeyValue(t("figures.score.score"), score),
        KeyValue(t("figures.score.bonus"), bonus),
    ]
    lines += [f"{r[0]} ({r[1]}): {r[2]} · {r[3]} → {r[4]}" for r in rows]
    found = [i.progress.figure for i in card.items if i.progress is not None]
    # Drill-down: each item's button asks for the figure behind it, day by day.
    drill = tuple(
        Button(
            ctx.metric_name(item.item.metric),
            ASK,
            t(
                "figures.ask.drill",
                name=person.id,  # the id: a name may be in another script than the question
                period=period.label(),
                metric=item.item.metric.replace("_", " "),
            ),
        )
        for item in card.items
    )
    reply = Reply(
        "\n".join(lines),
        ctx.language,
        headline=headline,
        fields=tuple(fields),
        buttons=drill,
        table=Table(
            (
                t("figures.score.metric"),
                t("figures.score.weight"),
                t("figures.actual"),
                t("figures.achievement"),
                t("figures.score.points"),
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
    t = ctx.t
    reasons = []
    for result in card.gate_values:
        gate, name = result.gate, ctx.metric_name(result.gate.metric)
        found = ctx.core.organisation.catalogue.get(gate.metric)
        unit = found.unit if found else "decimal"
        value = ctx.figure_text(result.value, unit, card.currency)
        if result.value is None:
            reasons.append(t("figures.gate.no_value", name=name))
        elif gate.max is not None and result.value > gate.max:
            limit = ctx.figure_text(gate.max, unit, card.currency)
            reasons.append(t("figures.gate.above", name=name, value=value, limit=limit))
        else:
            limit = ctx.figure_text(gate.min, unit, card.currency)
            reasons.append(t("figures.gate.below", name=name, value=value, limit=limit))
    if card.pilot:
        reasons.append(t("figures.bonus.pilot"))
    if card.score is None:
        reasons.append(t("figures.bonus.no_score"))
    if card.first_tier is not None and not card.bonus:
        reasons.append(t("figures.bonus.below_tier", tier=f"{card.first_tier:g}"))
    if card.missing_rates:
        rates = ", ".join(f"{c} {d.isoformat()}" for c, d in card.missing_rates[:3])
        reasons.append(t("figures.bonus.missing_fx", rates=rates))
    return reasons
