"""Digests as replies: the morning stand-up, the day-end recap and the weekly report, in the
team's language, plus each person's own morning numbers in private, in theirs.

Every text comes from the message catalogue (`digest.*`, `chart.*`), every number and day is
written as the reader's locale writes it. A team channel is shown only what any member of the
team may see (`ranking_for_members`): people's values only when members may see them, otherwise
their places and names, or nothing. Each posted number is returned beside the reply, so a later
revision can be noticed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from bot.charts import render_month_chart
from bot.chat.context import ASK, bar_caption, caveats, figure_text, incomplete_mark
from bot.chat.messages import Button, KeyValue, Language, ProgressBar, Reply, Table
from bot.features.digests.dates import LocalDay, LocalSpan
from bot.i18n import has_text, text, texts
from bot.i18n.format import DASH, moment, number, percent
from bot.i18n.format import pace as pace_text
from bot.i18n.names import metric_name
from kpi_engine.annotations import notes
from kpi_engine.calendar import events_between
from kpi_engine.compare import Delta, Ranked
from kpi_engine.digest import DayAndMonth, Recap, TeamDigest, month_series
from kpi_engine.figures import Figure, Figures
from kpi_engine.freshness import SOURCES, last_imports
from kpi_engine.organisation import Organisation
from kpi_engine.restatements import Watched
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans, Progress

KINDS = ("morning", "evening", "weekly")
__all__ = ["KINDS", "Digests", "Post", "Watched"]


@dataclass(frozen=True)
class Post:
    """A reply for a team channel (`person` None) or privately for one person."""

    reply: Reply
    person: str | None
    watched: tuple[Watched, ...] = ()


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

    def _money(self, language: Language, value: Decimal | None, currency: str) -> str:
        return figure_text(value, "money", currency, language)

    def _value(self, language: Language, figure: Figure) -> str:
        return figure_text(figure.value, figure.unit, figure.currency, language)

    def _name(self, person: str) -> str:
        return self.organisation.people[person].name

    def _names(self, language: Language, people: Iterable[str]) -> str:
        return text(language, "list.separator").join(self._name(p) for p in people) or DASH

    def _metric(self, language: Language, metric: str) -> str:
        """A metric's compact name for digest fields: the digests' label, else its name."""
        compact = f"digest.metric.{metric}"
        if has_text(compact):
            return text(language, compact)
        return metric_name(self.organisation.catalogue, metric, language)

    def _driver(self, language: Language, metric: str | None) -> str:
        """A driver of the GMV explanation, named as its metric is."""
        if metric is None:  # the orders the traffic data does not cover
            return text(language, "digest.why.other")
        return self._metric(language, metric)

    def _freshness(self, language: Language, figures: list[Figure], timezone: str) -> str:
        """Provisional or settled, what else the reader must know (missing FX rates named,
        shared credit, corrections), and each source's latest import, in the team's zone."""
        t = texts(language)
        found = caveats(language, figures, split=self.figures.split_credit)
        state = " · ".join(found) if found else t("digest.settled")
        imported = last_imports(self.engine)
        stamps = [
            t(
                "digest.source.stamp",
                source=t(f"digest.source.{source}"),
                at=moment(at, timezone, language),
            )
            for source in SOURCES
            if (at := imported.get(source)) is not None
        ]
        if not stamps:
            return state
        return t("digest.freshness", state=state, imports=t("list.separator").join(stamps))

    def _bars(
        self, language: Language, pairs: Iterable[tuple[str, Progress]], currency: str
    ) -> tuple[ProgressBar, ...]:
        """Achievement bars ("actual / target") for the progresses that have a target."""
        return tuple(
            ProgressBar(
                label,
                p.achievement,
                bar_caption(p.figure, p.target, language),
            )
            for label, p in pairs
            if p.achievement is not None
        )

    def _notes(
        self, language: Language, team: str, first: date, last: date, fields: list[KeyValue]
    ) -> list[str]:
        """The period's notes on the team, its people and shops: text lines, and a field."""
        t = texts(language)
        people = [p.id for p in self.organisation.people.values() if p.team == team]
        shops = [s.id for s in self.organisation.shops.values() if s.team == team]
        entities = ["company", f"team:{team}", *(f"person:{p}" for p in people)]
        entities += [f"shop:{s}" for s in shops]
        found = notes(self.engine, entities, first, last)
        if not found:
            return []
        heading = t("digest.notes.heading")
        items = [t("digest.notes.item", day=LocalDay(n.day, language), note=n.text) for n in found]
        fields.append(KeyValue(heading, t("digest.notes.separator").join(items)))
        return [t("digest.notes.title", heading=heading)] + [f"· {item}" for item in items]

    def _calendar(
        self, language: Language, team: str, first: date, last: date, fields: list[KeyValue]
    ) -> list[str]:
        """The calendar's events for the team or its shops on those days (11.11, Black Friday,
        a holiday): name, days, target weight and what they do to alerts; text lines and a
        field."""
        t = texts(language)
        shops = [Scope("shop", s.id) for s in self.organisation.shops.values() if s.team == team]
        found = events_between(
            self.organisation.calendar, first, last, [Scope("team", team), *shops]
        )
        if not found:
            return []
        items = []
        for occurrence in found:
            event = occurrence.event
            days = (
                t("digest.calendar.day", day=LocalDay(occurrence.first, language))
                if occurrence.first == occurrence.last
                else t(
                    "digest.calendar.days",
                    first=LocalDay(occurrence.first, language),
                    last=LocalDay(occurrence.last, language),
                )
            )
            places = -min(0, event.weight.normalize().as_tuple().exponent)  # type: ignore[operator]
            weight = number(event.weight, language, places=places)  # ×3, ×2.5, ×0.3
            mode = "" if event.alerts == "normal" else t(f"digest.calendar.{event.alerts}")
            items.append(
                t("digest.calendar.item", days=days, name=event.name, weight=weight, alerts=mode)
            )
        heading = t("digest.calendar.heading")
        fields.append(KeyValue(heading, t("digest.notes.separator").join(items)))
        return [t("digest.notes.title", heading=heading)] + [f"· {item}" for item in items]

    def _delta(self, language: Language, delta: Delta, unit: str = "money") -> str:
        """A change: rates in percentage points, everything else relative."""
        change = delta.change if unit == "ratio" else delta.ratio
        if change is None:
            return DASH
        arrow = "↑" if change > 0 else "↓" if change < 0 else "→"
        if unit == "ratio":
            size = number(abs(change) * 100, language, places=1)
            return text(language, "digest.change.points", arrow=arrow, points=size)
        return arrow + percent(abs(change), language, places=1)

    def _against(self, language: Language, progress: Progress) -> str:
        """A figure, with its target and achievement when it has a target."""
        value = self._value(language, progress.figure)
        if progress.target is None:
            return value
        figure = progress.figure
        return text(
            language,
            "digest.imported.value",
            value=value,
            target=figure_text(progress.target, figure.unit, figure.currency, language),
            achievement=percent(progress.achievement, language),
        )

    def _imported(
        self, language: Language, found: dict[str, DayAndMonth]
    ) -> tuple[list[KeyValue], list[str], list[Figure]]:
        """Imported metrics (first response time, on-time dispatch…): a field and a line each,
        yesterday and month to date against their targets, and the figures stated."""
        fields, lines, stated = [], [], []
        for key, both in found.items():
            label = self._metric(language, key)
            value = text(
                language,
                "digest.imported.day_month",
                day=self._against(language, both.yesterday),
                month=self._against(language, both.month)
                + incomplete_mark(language, [both.month.figure]),
            )
            fields.append(KeyValue(label, value))
            lines.append(text(language, "digest.line", label=label, value=value))
            stated += [both.yesterday.figure, both.month.figure]
        return fields, lines, stated

    def _people_table(
        self,
        language: Language,
        ranking: list[Ranked],
        progress: dict[str, Progress],
        currency: str,
        limit: int | None = None,
    ) -> Table | None:
        """The team's people as a channel may see them."""
        t = texts(language)
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
        name = t("digest.table.name")
        if shown == "names":
            return Table(("#", name), tuple((str(r.rank), self._name(r.entity)) for r in ranked))
        columns = ("#", name, t("digest.table.gmv"), t("digest.table.achievement"))
        rows = []
        for r in ranked:
            achieved = progress[r.entity].achievement if r.entity in progress else None
            rows.append(
                (
                    str(r.rank),
                    self._name(r.entity),
                    self._money(language, r.value, currency),
                    percent(achieved, language),
                )
            )
        return Table(columns, tuple(rows))

    # -- the morning stand-up ---------------------------------------------------------------

    def morning(self, digest: TeamDigest, *, now: int, delayed: bool = False) -> list[Post]:
        """The team's stand-up post, then each person's own numbers."""
        org = self.organisation
        team = org.teams[digest.team]
        language: Language = team.language
        t = texts(language)
        currency = team.currency
        day = digest.day
        gmv = digest.yesterday["gmv"]
        mtd = digest.month_to_date
        headline = t("digest.morning.headline", team=team.name, day=LocalDay(day.first, language))
        if delayed:
            headline += t("digest.delayed")
        value, target = (
            self._value(language, gmv.figure),
            self._money(language, gmv.target, currency),
        )
        achieved = percent(gmv.achievement, language)
        fields = [
            KeyValue(t("digest.field.gmv_yesterday"), value),
            KeyValue(
                t("digest.field.target_yesterday"),
                t("digest.value_note", value=target, note=achieved),
            ),
        ]
        before = digest.day_before
        for metric in ("orders", "aov", "refund_rate", "views"):
            progress = digest.yesterday[metric]
            figure = progress.figure
            change = self._delta(language, Delta(before[metric].value, figure.value), figure.unit)
            fields.append(
                KeyValue(
                    self._metric(language, metric),
                    t("digest.value_note", value=self._value(language, figure), note=change),
                )
            )
        flag = incomplete_mark(language, [mtd.figure])
        month, pace = self._value(language, mtd.figure), pace_text(mtd, language)
        projection = self._money(language, mtd.projection, currency)
        fields += [
            KeyValue(t("digest.field.month_to_date"), month + flag),
            KeyValue(t("digest.field.pace"), pace + flag),
            KeyValue(t("digest.field.projected"), projection + flag),
        ]
        imported_fields, imported_lines, imported_stated = self._imported(language, digest.imported)
        fields += imported_fields
        lines = [
            headline,
            t("digest.morning.gmv_line", value=value, target=target, achievement=achieved),
            t("digest.morning.month_line", value=month, pace=pace, projection=projection),
            *imported_lines,
        ]
        explanation = digest.explanation
        if explanation is not None and explanation.biggest is not None:
            drivers: list[tuple[str | None, Decimal]] = [
                (d.metric, d.contribution) for d in explanation.drivers
            ]
            if explanation.unexplained:
                drivers.append((None, explanation.unexplained))
            parts = t("list.separator").join(
                t(
                    "digest.why.driver",
                    driver=self._driver(language, metric),
                    amount=self._money(language, contribution, currency),
                )
                for metric, contribution in drivers
            )
            biggest = explanation.biggest
            main = self._driver(language, None if biggest.name == "other" else biggest.metric)
            share = explanation.covered_share
            covered = ""
            if explanation.traffic == "views" and share is not None and share < 1:
                covered = t("digest.why.covered", share=percent(share, language))
            why = t(
                "digest.why.text",
                change=self._money(language, explanation.change, currency),
                drivers=parts,
                main=main,
                covered=covered,
            )
            fields.append(KeyValue(t("digest.field.why"), why))
            lines.append(t("digest.why.line", why=why))
        shown = org.settings.ranking_for_members
        if shown != "own" and (digest.risers or digest.fallers):
            moved = t(
                "digest.movers.text",
                up=self._names(language, (p for p, _ in digest.risers)),
                down=self._names(language, (p for p, _ in digest.fallers)),
            )
            fields.append(KeyValue(t("digest.field.movers"), moved))
            lines.append(moved)
        table = self._people_table(language, digest.ranking, digest.people_yesterday, currency)
        shown_people = list(digest.people_day.values()) if table is not None else []
        if table is not None:
            lines.append(t("digest.morning.ranking"))
            lines += ["  " + "  ".join(row) for row in table.rows]
        lines += self._notes(language, digest.team, day.first.replace(day=1), day.last, fields)
        # The reported day and the week ahead: what weighed yesterday, what is coming.
        lines += self._calendar(
            language, digest.team, day.first, day.last + timedelta(days=7), fields
        )
        stated = [p.figure for p in digest.yesterday.values()] + [mtd.figure, *imported_stated]
        context = self._freshness(language, stated + shown_people, team.timezone)
        lines.append(context)
        points = month_series(
            self.figures, self.plans, Scope("team", digest.team), day.last, now=now
        )
        chart = render_month_chart(
            t("chart.title", team=team.name, month=LocalDay(day.first, language)),
            points,
            currency,
            language,
        )
        bars = self._bars(
            language,
            ((t("digest.bar.yesterday"), gmv), (t("digest.bar.month"), mtd)),
            currency,
        )
        buttons = (
            Button(t("digest.button.why"), ASK, t("digest.ask.why")),
            Button(t("digest.button.ranking"), ASK, t("digest.ask.ranking")),
            Button(t("digest.button.mine"), ASK, t("digest.ask.mine")),
            # 📊 opens the clicker's own dashboard (a private link under their permissions).
            Button(t("digest.button.dashboard"), "dashboard.open", ""),
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
            language = self.organisation.language_of(person)
            t = texts(language)
            month = digest.people_month[person_id]
            imported = digest.people_imported.get(person_id, {})
            # GMV only for who sells or is targeted on it; customer service, fulfilment… are
            # told their imported metrics (first response time, on-time dispatch).
            sells = month.target is not None or bool(month.figure.value)
            if not sells and not imported:
                continue  # nothing to tell them
            headline = t(
                "digest.personal.headline",
                name=person.name,
                day=LocalDay(digest.day.first, language),
            )
            if delayed:
                headline += t("digest.delayed")
            lines = [headline]
            fields: list[KeyValue] = []
            bars: tuple[ProgressBar, ...] = ()
            stated: list[Figure] = []
            buttons: list[Button] = []
            if sells:
                place = places.get(person_id)
                rank = (
                    t("digest.personal.rank", rank=place.rank, total=total)
                    if place is not None and place.rank is not None
                    else t("digest.personal.no_sales")
                )
                value = self._value(language, yesterday.figure)
                target = self._money(language, yesterday.target, team.currency)
                flag = incomplete_mark(language, [month.figure])
                month_value = self._value(language, month.figure)
                lines += [
                    t(
                        "digest.personal.gmv_line",
                        value=value,
                        target=target,
                        achievement=percent(yesterday.achievement, language),
                        rank=rank,
                    ),
                    t(
                        "digest.personal.month_line",
                        value=month_value,
                        pace=pace_text(month, language),
                        projection=self._money(language, month.projection, team.currency),
                    )
                    + flag,
                ]
                fields += [
                    KeyValue(t("digest.field.gmv_yesterday"), value),
                    KeyValue(t("digest.field.target"), target),
                    KeyValue(t("digest.field.rank"), rank),
                    KeyValue(t("digest.field.month_to_date"), month_value + flag),
                ]
                bars = self._bars(
                    language,
                    ((t("digest.bar.yesterday"), yesterday), (t("digest.bar.month"), month)),
                    team.currency,
                )
                stated += [yesterday.figure, month.figure]
                buttons += [
                    Button(t("digest.button.today"), ASK, t("digest.ask.mine")),
                    # Disputing yesterday's number starts an appeal (bot/appeals.py).
                    Button(
                        t("digest.button.dispute"),
                        "appeal.start",
                        f"gmv|{digest.day.first.isoformat()}",
                    ),
                ]
            imported_fields, imported_lines, imported_stated = self._imported(language, imported)
            lines += imported_lines
            fields += imported_fields
            stated += imported_stated
            buttons.append(Button(t("digest.button.dashboard"), "dashboard.open", ""))
            context = self._freshness(language, stated, team.timezone)
            posts.append(
                Post(
                    Reply(
                        "\n".join([*lines, context]),
                        language,
                        headline=headline,
                        fields=tuple(fields),
                        progress=bars,
                        buttons=tuple(buttons),
                        context=context,
                        private=True,
                    ),
                    person_id,
                    tuple(Watched.of(f) for f in stated),
                )
            )
        return posts

    # -- the day-end recap and the weekly report --------------------------------------------

    def recap(self, recap: Recap, kind: str, *, delayed: bool = False) -> Post:
        """A recap of a day (`evening`) or a week (`weekly`) for the team channel."""
        team = self.organisation.teams[recap.team]
        language: Language = team.language
        t = texts(language)
        currency = team.currency
        gmv = recap.progress["gmv"]
        if kind == "evening":
            day = LocalDay(recap.period.first, language)
            headline = t("digest.evening.headline", team=team.name, day=day)
            versus = t("digest.evening.versus")
        else:
            week = LocalSpan(recap.period, language)
            headline = t("digest.weekly.headline", team=team.name, week=week)
            versus = t("digest.weekly.versus")
        if delayed:
            headline += t("digest.delayed")
        month_change = self._delta(
            language, Delta(recap.month_gmv_before.value, recap.month_gmv.figure.value)
        )
        fields = [
            KeyValue(t("digest.field.gmv"), self._value(language, gmv.figure)),
            KeyValue(
                t("digest.field.target"),
                t(
                    "digest.value_note",
                    value=self._money(language, gmv.target, currency),
                    note=percent(gmv.achievement, language),
                ),
            ),
        ]
        for metric in ("gmv", "orders", "aov", "refund_rate"):
            figure = recap.progress[metric].figure
            change = self._delta(
                language, Delta(recap.before[metric].value, figure.value), figure.unit
            )
            label = t("digest.field.change", metric=self._metric(language, metric), versus=versus)
            fields.append(KeyValue(label, change))
        for key, progress in recap.imported.items():
            fields.append(KeyValue(self._metric(language, key), self._against(language, progress)))
        month_figure = recap.month_gmv.figure
        fields += [
            KeyValue(
                t("digest.field.month_to_date"),
                self._value(language, month_figure) + incomplete_mark(language, [month_figure]),
            ),
            KeyValue(t("digest.field.vs_last_month"), month_change),
        ]
        lines = [headline] + [t("digest.line", label=f.label, value=f.value) for f in fields]
        people = self._people_table(
            language, recap.top_people, {}, currency, limit=5
        )  # no per-person targets here: the value columns say enough
        if people is not None:
            people = Table(people.columns[:3], tuple(r[:3] for r in people.rows))
            lines.append(t("digest.recap.top_people"))
            lines += ["  " + "  ".join(row) for row in people.rows]
        shops = [r for r in recap.top_shops if r.rank is not None][:3]
        if shops:
            # Ranked and shown in the team's currency (each order at its own date's rate).
            lines.append(t("digest.recap.top_shops", currency=currency))
            best = [
                t(
                    "digest.recap.shop",
                    rank=r.rank,
                    shop=self.organisation.shops[r.entity].name,
                    value=self._value(language, recap.shop_figures[r.entity])
                    + incomplete_mark(language, [recap.shop_figures[r.entity]]),
                )
                for r in shops
            ]
            lines += [f"  {line}" for line in best]
            fields.append(KeyValue(t("digest.field.top_shops"), " · ".join(best)))
        lines += self._notes(language, recap.team, recap.period.first, recap.period.last, fields)
        lines += self._calendar(
            language, recap.team, recap.period.first, recap.period.last + timedelta(days=7), fields
        )
        shown_people = (
            [recap.people_figures[r.entity] for r in recap.top_people[:5] if r.rank is not None]
            if people is not None
            else []
        )
        shown = [p.figure for p in recap.progress.values()] + [month_figure]
        shown += [p.figure for p in recap.imported.values()]
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
                progress=self._bars(language, ((t("digest.field.gmv"), gmv),), currency),
                buttons=(Button(t("digest.button.dashboard"), "dashboard.open", ""),),
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
