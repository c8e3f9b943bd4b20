"""Digests as replies: the morning stand-up, the day-end recap and the weekly report, in the
team's language, plus each person's own morning numbers in private.

A team channel is shown only what any member of the team may see (`ranking_for_members`):
people's values only when members may see them, otherwise their places and names, or nothing.
Each posted number is returned beside the reply, so a later revision can be noticed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import Engine

from bot.charts import render_month_chart
from bot.chat.commands import ASK, percent
from bot.chat.messages import Button, KeyValue, Language, ProgressBar, Reply, Table
from kpi_engine.annotations import notes
from kpi_engine.compare import Delta, Ranked
from kpi_engine.digest import Recap, TeamDigest, month_series
from kpi_engine.figures import Figure, Figures, format_value
from kpi_engine.freshness import SOURCES, last_imports
from kpi_engine.instants import zone
from kpi_engine.organisation import Organisation
from kpi_engine.periods import Period
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans, Progress

KINDS = ("morning", "evening", "weekly")


@dataclass(frozen=True)
class Watched:
    """A posted number to re-check later for revisions."""

    scope: Scope
    metric: str
    period: Period
    value: Decimal | None


@dataclass(frozen=True)
class Post:
    """A reply for a team channel (`person` None) or privately for one person."""

    reply: Reply
    person: str | None
    watched: tuple[Watched, ...] = ()


_SOURCE_NAMES = {
    "orders": ("订单", "orders"),
    "refunds": ("退款", "refunds"),
    "live_sessions": ("直播", "lives"),
    "ad_spend": ("广告", "ads"),
    "metric_values": ("其他指标", "other metrics"),
}
_METRIC_NAMES = {
    "gmv": ("GMV", "GMV"),
    "orders": ("订单数", "Orders"),
    "aov": ("客单价", "AOV"),
    "refund_rate": ("退款率", "Refund rate"),
    "views": ("观看人数", "Views"),
}
# Without live traffic the split is orders × order value (kpi_engine.compare.explain_gmv).
_DRIVERS = {"traffic": ("流量", "traffic"), "conversion": ("转化率", "conversion")}
_DRIVERS.update(aov=("客单价", "order value"), orders=("订单数", "orders"))


class Digests:
    """Builds the digest posts of one organisation."""

    def __init__(
        self, organisation: Organisation, engine: Engine, figures: Figures, plans: Plans
    ) -> None:
        self.organisation = organisation
        self.engine = engine
        self.figures = figures
        self.plans = plans

    # -- shared pieces ----------------------------------------------------------------------

    def _t(self, language: Language, zh: str, en: str) -> str:
        return zh if language == "zh" else en

    def _money(self, value: Decimal | None, currency: str) -> str:
        return format_value(value, "money", currency)

    def _value(self, figure: Figure) -> str:
        return format_value(figure.value, figure.unit, figure.currency)

    def _name(self, person: str) -> str:
        return self.organisation.people[person].name

    def _freshness(self, language: Language, figures: list[Figure], timezone: str) -> str:
        """Provisional or settled, and each source's latest import, in the team's zone."""
        parts = [
            self._t(language, "暂定数据（尚未结算）", "provisional (not settled yet)")
            if any(f.provisional for f in figures)
            else self._t(language, "已结算", "settled")
        ]
        imported = last_imports(self.engine)
        for source in SOURCES:
            at = imported.get(source)
            if at is None:
                continue
            stamp = datetime.fromtimestamp(at, zone(timezone)).strftime("%m-%d %H:%M")
            parts.append(f"{self._t(language, *_SOURCE_NAMES[source])} {stamp}")
        label = self._t(language, "数据更新", "data updated")
        return f"{parts[0]} · {label}: " + ", ".join(parts[1:]) if parts[1:] else parts[0]

    def _bars(
        self, pairs: Iterable[tuple[str, Progress]], currency: str
    ) -> tuple[ProgressBar, ...]:
        """Achievement bars ("actual / target") for the progresses that have a target."""
        return tuple(
            ProgressBar(
                label, p.achievement, f"{self._value(p.figure)} / {self._money(p.target, currency)}"
            )
            for label, p in pairs
            if p.achievement is not None
        )

    def _notes(
        self, language: Language, team: str, first: date, last: date, fields: list[KeyValue]
    ) -> list[str]:
        """The period's notes on the team, its people and shops: text lines, and a field."""
        people = [p.id for p in self.organisation.people.values() if p.team == team]
        shops = [s.id for s in self.organisation.shops.values() if s.team == team]
        entities = ["company", f"team:{team}", *(f"person:{p}" for p in people)]
        entities += [f"shop:{s}" for s in shops]
        found = notes(self.engine, entities, first, last)
        if not found:
            return []
        heading = self._t(language, "备注", "Notes")
        items = [f"{n.day:%m-%d} {n.text}" for n in found]
        fields.append(KeyValue(heading, "; ".join(items)))
        return [f"{heading}:"] + [f"· {item}" for item in items]

    def _delta(self, language: Language, delta: Delta) -> str:
        ratio = delta.ratio
        if ratio is None:
            return "—"
        arrow = "↑" if ratio > 0 else "↓" if ratio < 0 else "→"
        return f"{arrow}{abs(ratio) * 100:.1f}%"

    def _people_table(
        self,
        language: Language,
        ranking: list[Ranked],
        progress: dict[str, Progress],
        currency: str,
        limit: int | None = None,
    ) -> Table | None:
        """The team's people as a channel may see them."""
        shown = self.organisation.settings.ranking_for_members
        # People with nothing to rank by (no sales and no target: a manager, say) are left out.
        ranked = [
            r
            for r in ranking
            if r.rank is not None
            and (r.value or (r.entity in progress and progress[r.entity].target is not None))
        ][:limit]
        if shown == "own" or not ranked:
            return None
        name = self._t(language, "姓名", "Name")
        if shown == "names":
            return Table(("#", name), tuple((str(r.rank), self._name(r.entity)) for r in ranked))
        columns = ("#", name, "GMV", self._t(language, "完成率", "vs target"))
        rows = []
        for r in ranked:
            achieved = progress[r.entity].achievement if r.entity in progress else None
            rows.append(
                (
                    str(r.rank),
                    self._name(r.entity),
                    self._money(r.value, currency),
                    percent(achieved),
                )
            )
        return Table(columns, tuple(rows))

    # -- the morning stand-up ---------------------------------------------------------------

    def morning(self, digest: TeamDigest, *, now: int, delayed: bool = False) -> list[Post]:
        """The team's stand-up post, then each person's own numbers."""
        org = self.organisation
        team = org.teams[digest.team]
        language: Language = team.language
        t = partial(self._t, language)
        currency = team.currency
        day = digest.day
        gmv = digest.yesterday["gmv"]
        mtd = digest.month_to_date
        headline = t(
            f"{team.name} · 早报（{day.first:%m-%d} 数据）",
            f"{team.name} · morning stand-up ({day.first:%b %d} figures)",
        )
        if delayed:
            headline += t("（延迟发送）", " (delayed)")
        fields = [
            KeyValue(t("昨日 GMV", "GMV yesterday"), self._value(gmv.figure)),
            KeyValue(
                t("昨日目标", "Target"),
                self._money(gmv.target, currency) + f" ({percent(gmv.achievement)})",
            ),
        ]
        before = digest.day_before
        for metric in ("orders", "aov", "refund_rate", "views"):
            progress = digest.yesterday[metric]
            change = self._delta(language, Delta(before[metric].value, progress.figure.value))
            fields.append(
                KeyValue(t(*_METRIC_NAMES[metric]), f"{self._value(progress.figure)} ({change})")
            )
        fields += [
            KeyValue(t("本月累计", "Month to date"), self._value(mtd.figure)),
            KeyValue(t("本月进度", "MTD pace"), percent(mtd.pace)),
            KeyValue(t("预计全月", "Projected month"), self._money(mtd.projection, currency)),
        ]
        lines = [headline]
        lines.append(
            t(
                f"昨日 GMV {self._value(gmv.figure)}，目标 {self._money(gmv.target, currency)}，"
                f"完成 {percent(gmv.achievement)}",
                f"GMV yesterday {self._value(gmv.figure)} against "
                f"{self._money(gmv.target, currency)} ({percent(gmv.achievement)})",
            )
        )
        lines.append(
            t(
                f"本月累计 {self._value(mtd.figure)}，进度 {percent(mtd.pace)}，"
                f"预计全月 {self._money(mtd.projection, currency)}",
                f"Month to date {self._value(mtd.figure)}, pace {percent(mtd.pace)}, "
                f"projected {self._money(mtd.projection, currency)}",
            )
        )
        explanation = digest.explanation
        if explanation is not None and explanation.biggest is not None:
            parts = ", ".join(
                f"{t(*_DRIVERS[d.name])} {self._money(d.contribution, currency)}"
                for d in explanation.drivers
            )
            why = t(
                f"较前一天 {self._money(explanation.change, currency)}：{parts}；"
                f"主要原因：{t(*_DRIVERS[explanation.biggest.name])}",
                f"{self._money(explanation.change, currency)} vs the day before: {parts}; "
                f"biggest driver: {t(*_DRIVERS[explanation.biggest.name])}",
            )
            fields.append(KeyValue(t("GMV 为什么变了", "Why GMV moved"), why))
            lines.append(f"GMV {why}")
        shown = org.settings.ranking_for_members
        if shown != "own" and (digest.risers or digest.fallers):
            up = "、".join(self._name(p) for p, _ in digest.risers) or "—"
            down = "、".join(self._name(p) for p, _ in digest.fallers) or "—"
            moved = t(f"进步最多：{up}；下滑最多：{down}", f"up most: {up}; down most: {down}")
            fields.append(KeyValue(t("变化最大", "Movers"), moved))
            lines.append(moved)
        table = self._people_table(language, digest.ranking, digest.people_yesterday, currency)
        if table is not None:
            lines.append(t("昨日排名：", "Yesterday's ranking:"))
            lines += ["  " + "  ".join(row) for row in table.rows]
        lines += self._notes(language, digest.team, day.first.replace(day=1), day.last, fields)
        context = self._freshness(language, [gmv.figure, mtd.figure], team.timezone)
        lines.append(context)
        points = month_series(
            self.figures, self.plans, Scope("team", digest.team), day.last, now=now
        )
        chart = render_month_chart(
            t(
                f"{team.name} · {day.first:%Y-%m} 每日 GMV",
                f"{team.name} · daily GMV {day.first:%Y-%m}",
            ),
            points,
            currency,
            language,
        )
        bars = self._bars(((t("昨日", "Yesterday"), gmv), (t("本月", "Month"), mtd)), currency)
        buttons = (
            Button(
                t("为什么变了", "Why it moved"),
                ASK,
                t("团队昨天为什么GMV变了", "why did team GMV move yesterday"),
            ),
            Button(t("本月排名", "Month ranking"), ASK, t("本月排名", "ranking this month")),
            Button(t("我的进度", "My progress"), ASK, t("我今天GMV多少", "my GMV today")),
        )
        team_scope = Scope("team", digest.team)
        posts = [
            Post(
                Reply(
                    "\n".join(lines),
                    language,
                    headline=headline,
                    fields=tuple(fields),
                    table=table,
                    progress=bars,
                    chart=chart,
                    buttons=buttons,
                    context=context,
                ),
                None,
                (
                    Watched(team_scope, "gmv", day, gmv.figure.value),
                    Watched(team_scope, "gmv", mtd.figure.period, mtd.figure.value),
                ),
            )
        ]
        if org.settings.schedules.personal if team.schedules is None else team.schedules.personal:
            posts += self._personal(digest, delayed=delayed)
        return posts

    def _personal(self, digest: TeamDigest, *, delayed: bool) -> list[Post]:
        """Each person's yesterday and month to date, privately, in their language."""
        team = self.organisation.teams[digest.team]
        places = {r.entity: r for r in digest.ranking}
        targeted = {p for p, progress in digest.people_yesterday.items() if progress.target}
        total = sum(
            1 for r in digest.ranking if r.rank is not None and (r.value or r.entity in targeted)
        )
        posts = []
        for person_id, yesterday in digest.people_yesterday.items():
            person = self.organisation.people[person_id]
            language: Language = person.language or team.language
            t = partial(self._t, language)
            month = digest.people_month[person_id]
            if month.target is None and not month.figure.value:
                continue  # nobody sells or is targeted on GMV here: nothing to tell them
            place = places.get(person_id)
            rank = (
                t(f"组内第 {place.rank}/{total} 名", f"#{place.rank} of {total} in the team")
                if place is not None and place.rank is not None
                else t("昨日无成交", "no sales yesterday")
            )
            value, target = (
                self._value(yesterday.figure),
                self._money(yesterday.target, team.currency),
            )
            headline = t(
                f"{person.name}，早上好 · {digest.day.first:%m-%d}",
                f"Good morning, {person.name} · {digest.day.first:%b %d}",
            )
            if delayed:
                headline += t("（延迟发送）", " (delayed)")
            lines = [
                headline,
                t(
                    f"昨日 GMV {value}，目标 {target}，"
                    f"完成 {percent(yesterday.achievement)}，{rank}",
                    f"GMV yesterday {value}, target {target}, {percent(yesterday.achievement)} "
                    f"achieved, {rank}",
                ),
                t(
                    f"本月累计 {self._value(month.figure)}，进度 {percent(month.pace)}，"
                    f"预计 {self._money(month.projection, team.currency)}",
                    f"Month to date {self._value(month.figure)}, pace {percent(month.pace)}, "
                    f"projected {self._money(month.projection, team.currency)}",
                ),
            ]
            context = self._freshness(language, [yesterday.figure, month.figure], team.timezone)
            bars = self._bars(
                ((t("昨日", "Yesterday"), yesterday), (t("本月", "Month"), month)), team.currency
            )
            scope = Scope("person", person_id)
            posts.append(
                Post(
                    Reply(
                        "\n".join([*lines, context]),
                        language,
                        headline=headline,
                        fields=(
                            KeyValue(t("昨日 GMV", "GMV yesterday"), value),
                            KeyValue(t("目标", "Target"), target),
                            KeyValue(t("排名", "Rank"), rank),
                            KeyValue(t("本月累计", "Month to date"), self._value(month.figure)),
                        ),
                        progress=bars,
                        buttons=(
                            Button(
                                t("今天进度", "Today so far"),
                                ASK,
                                t("我今天GMV多少", "my GMV today"),
                            ),
                            # Disputing yesterday's number starts an appeal (bot/appeals.py).
                            Button(
                                t("申诉", "Dispute"),
                                "appeal.start",
                                f"gmv|{digest.day.first.isoformat()}",
                            ),
                        ),
                        context=context,
                        private=True,
                    ),
                    person_id,
                    (Watched(scope, "gmv", digest.day, yesterday.figure.value),),
                )
            )
        return posts

    # -- the day-end recap and the weekly report --------------------------------------------

    def recap(self, recap: Recap, kind: str, *, delayed: bool = False) -> Post:
        """A recap of a day (`evening`) or a week (`weekly`) for the team channel."""
        team = self.organisation.teams[recap.team]
        language: Language = team.language
        t = partial(self._t, language)
        currency = team.currency
        gmv = recap.progress["gmv"]
        if kind == "evening":
            headline = t(
                f"{team.name} · 今日复盘 {recap.period.first:%m-%d}",
                f"{team.name} · day-end recap {recap.period.first:%b %d}",
            )
            versus = t("较上周同日", "vs same day last week")
        else:
            headline = t(
                f"{team.name} · 周报 {recap.period.label()}",
                f"{team.name} · weekly report {recap.period.label()}",
            )
            versus = t("环比上周", "week on week")
        if delayed:
            headline += t("（延迟发送）", " (delayed)")
        month_change = self._delta(
            language, Delta(recap.month_gmv_before.value, recap.month_gmv.figure.value)
        )
        fields = [
            KeyValue("GMV", self._value(gmv.figure)),
            KeyValue(
                t("目标", "Target"),
                self._money(gmv.target, currency) + f" ({percent(gmv.achievement)})",
            ),
        ]
        for metric in ("gmv", "orders", "aov", "refund_rate"):
            change = self._delta(
                language, Delta(recap.before[metric].value, recap.progress[metric].figure.value)
            )
            fields.append(KeyValue(f"{t(*_METRIC_NAMES[metric])} {versus}", change))
        fields += [
            KeyValue(t("本月累计", "Month to date"), self._value(recap.month_gmv.figure)),
            KeyValue(t("较上月同期", "vs last month, same days"), month_change),
        ]
        lines = [headline] + [f"{f.label}: {f.value}" for f in fields]
        people = self._people_table(
            language, recap.top_people, {}, currency, limit=5
        )  # no per-person targets here: the value columns say enough
        if people is not None:
            people = Table(people.columns[:3], tuple(r[:3] for r in people.rows))
            lines.append(t("主播前五：", "Top streamers:"))
            lines += ["  " + "  ".join(row) for row in people.rows]
        shops = [r for r in recap.top_shops if r.rank is not None][:3]
        if shops:
            lines.append(t("店铺前三：", "Top shops:"))
            names = {r.entity: self.organisation.shops[r.entity].name for r in shops}
            best = [f"{r.rank}. {names[r.entity]} {self._money(r.value, currency)}" for r in shops]
            lines += [f"  {line}" for line in best]
            fields.append(KeyValue(t("店铺前三", "Top shops"), " · ".join(best)))
        lines += self._notes(language, recap.team, recap.period.first, recap.period.last, fields)
        context = self._freshness(language, [gmv.figure], team.timezone)
        lines.append(context)
        return Post(
            Reply(
                "\n".join(lines),
                language,
                headline=headline,
                fields=tuple(fields),
                table=people,
                progress=self._bars((("GMV", gmv),), currency),
                context=context,
            ),
            None,
            (Watched(Scope("team", recap.team), "gmv", recap.period, gmv.figure.value),),
        )
