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
from bot.chat.context import ASK, caveats, incomplete_mark, percent
from bot.chat.messages import Button, KeyValue, Language, ProgressBar, Reply, Table
from kpi_engine.annotations import notes
from kpi_engine.compare import Delta, Ranked
from kpi_engine.digest import Recap, TeamDigest, month_series
from kpi_engine.figures import Figure, Figures, format_value
from kpi_engine.freshness import SOURCES, last_imports
from kpi_engine.instants import zone
from kpi_engine.organisation import Organisation
from kpi_engine.restatements import Watched
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans, Progress

KINDS = ("morning", "evening", "weekly")


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
__all__ = ["KINDS", "Digests", "Post", "Watched"]


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

    def _metric(self, language: Language, metric: str) -> str:
        """A metric's compact name, from the catalogue (the one place names live)."""
        found = self.organisation.catalogue.get(metric)
        return found.label(language) if found else metric

    def _driver(self, language: Language, name: str, metric: str | None) -> str:
        """A driver of the GMV explanation, named as its metric is."""
        if metric is None:  # the orders the traffic data does not cover
            return self._t(language, "其他渠道（无流量数据）", "other channels (no traffic data)")
        return self._metric(language, metric)

    def _freshness(self, language: Language, figures: list[Figure], timezone: str) -> str:
        """Provisional or settled, what else the reader must know (missing FX rates named,
        shared credit, corrections), and each source's latest import, in the team's zone."""
        t = partial(self._t, language)
        notes = caveats(t, figures, split=self.figures.split_credit)
        parts = [" · ".join(notes) if notes else t("已结算", "settled")]
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

    def _delta(self, language: Language, delta: Delta, unit: str = "money") -> str:
        """A change: rates in percentage points, everything else relative."""
        if unit == "ratio":
            change = delta.change
            if change is None:
                return "—"
            arrow = "↑" if change > 0 else "↓" if change < 0 else "→"
            return f"{arrow}{abs(change) * 100:.1f} pp"
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
            figure = progress.figure
            change = self._delta(language, Delta(before[metric].value, figure.value), figure.unit)
            fields.append(
                KeyValue(self._metric(language, metric), f"{self._value(figure)} ({change})")
            )
        flag = incomplete_mark(t, [mtd.figure])
        fields += [
            KeyValue(t("本月累计", "Month to date"), self._value(mtd.figure) + flag),
            KeyValue(t("本月进度", "MTD pace"), percent(mtd.pace) + flag),
            KeyValue(
                t("预计全月", "Projected month"), self._money(mtd.projection, currency) + flag
            ),
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
            drivers = [(d.name, d.metric, d.contribution) for d in explanation.drivers]
            if explanation.unexplained:
                drivers.append(("other", None, explanation.unexplained))
            parts = ", ".join(
                f"{self._driver(language, name, metric)} {self._money(contribution, currency)}"
                for name, metric, contribution in drivers
            )
            biggest = explanation.biggest
            main = self._driver(
                language, biggest.name, None if biggest.name == "other" else biggest.metric
            )
            share = explanation.covered_share
            covered = ""
            if explanation.traffic == "views" and share is not None and share < 1:
                covered = t(
                    f"（直播流量只覆盖 {percent(share)} 的订单）",
                    f" (live traffic covers {percent(share)} of the orders)",
                )
            why = t(
                f"较前一天 {self._money(explanation.change, currency)}：{parts}；"
                f"主要原因：{main}{covered}",
                f"{self._money(explanation.change, currency)} vs the day before: {parts}; "
                f"biggest driver: {main}{covered}",
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
        shown_people = list(digest.people_day.values()) if table is not None else []
        if table is not None:
            lines.append(t("昨日排名：", "Yesterday's ranking:"))
            lines += ["  " + "  ".join(row) for row in table.rows]
        lines += self._notes(language, digest.team, day.first.replace(day=1), day.last, fields)
        stated = [p.figure for p in digest.yesterday.values()] + [mtd.figure]
        context = self._freshness(language, stated + shown_people, team.timezone)
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
                # Every number posted is watched: the day's figures and the day before's (the
                # changes shown), the month to date, and people's values where shown.
                tuple(
                    Watched.of(f)
                    for f in [*stated, *before.values(), *values_shown(org, shown_people)]
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
                )
                + incomplete_mark(t, [month.figure]),
            ]
            context = self._freshness(language, [yesterday.figure, month.figure], team.timezone)
            bars = self._bars(
                ((t("昨日", "Yesterday"), yesterday), (t("本月", "Month"), month)), team.currency
            )
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
                            KeyValue(
                                t("本月累计", "Month to date"),
                                self._value(month.figure) + incomplete_mark(t, [month.figure]),
                            ),
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
                    (Watched.of(yesterday.figure), Watched.of(month.figure)),
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
            figure = recap.progress[metric].figure
            change = self._delta(
                language, Delta(recap.before[metric].value, figure.value), figure.unit
            )
            fields.append(KeyValue(f"{self._metric(language, metric)} {versus}", change))
        month_figure = recap.month_gmv.figure
        fields += [
            KeyValue(
                t("本月累计", "Month to date"),
                self._value(month_figure) + incomplete_mark(t, [month_figure]),
            ),
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
            # Ranked and shown in the team's currency (each order at its own date's rate).
            lines.append(t(f"店铺前三（折合 {currency}）：", f"Top shops (in {currency}):"))
            names = {r.entity: self.organisation.shops[r.entity].name for r in shops}
            best = [
                f"{r.rank}. {names[r.entity]} {self._value(recap.shop_figures[r.entity])}"
                + incomplete_mark(t, [recap.shop_figures[r.entity]])
                for r in shops
            ]
            lines += [f"  {line}" for line in best]
            fields.append(KeyValue(t("店铺前三", "Top shops"), " · ".join(best)))
        lines += self._notes(language, recap.team, recap.period.first, recap.period.last, fields)
        shown_people = (
            [recap.people_figures[r.entity] for r in recap.top_people[:5] if r.rank is not None]
            if people is not None
            else []
        )
        shown = [p.figure for p in recap.progress.values()] + [month_figure]
        shown_shops = [recap.shop_figures[r.entity] for r in shops]
        context = self._freshness(language, shown + shown_people + shown_shops, team.timezone)
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
            tuple(
                [Watched.of(f) for f in [*shown, *recap.before.values(), recap.month_gmv_before]]
                + [Watched.of(f) for f in values_shown(self.organisation, shown_people)]
                + [Watched.of(f, converted=True) for f in shown_shops]
            ),
        )


def values_shown(organisation: Organisation, figures: list[Figure]) -> list[Figure]:
    """People's figures whose values a team channel shows (`ranking_for_members: values`)."""
    return figures if organisation.settings.ranking_for_members == "values" else []
